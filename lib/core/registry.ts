// The programs attached through each behaviour file. The kernel holds the
// registry: a link pin per program in the behaviour's pin directory (see
// lib/kernel/port.ts). Nothing is cached here, so a listing cannot drift from what is
// attached: a pin removed behind krsifs's back is gone from the next one.
import type { KernelPort, PinnedLink } from './kernel-port.js';
import type { Mode } from './grammar.js';

export interface Attached {
  /** Full program name from the object (the pin's name; the kernel keeps only 15 characters). */
  name: string;
  behaviour: string;
  /** The hook the link really runs on (from the kernel), which may not be the behaviour's. */
  hook: string | null;
  progId: number;
  linkId: number;
  /** The object's path as the writer resolved it; null when unknown. */
  object: string | null;
  mode: Mode;
}

export class Registry {
  private changed = new Map<string, Date>();
  private readonly listeners: ((behaviour: string) => void)[] = [];

  constructor(
    private readonly kernel: KernelPort,
    private readonly startedAt = new Date(),
  ) {}

  /** What is attached through `behaviour`, read from the kernel now, in attach order (link id). */
  async list(behaviour: string): Promise<Attached[]> {
    return (await this.kernel.list(behaviour)).map((p) => attached(behaviour, p));
  }

  async get(behaviour: string, name: string): Promise<Attached | undefined> {
    return (await this.list(behaviour)).find((a) => a.name === name);
  }

  /** When the file's listing last changed through krsifs: its mtime. */
  changedAt(behaviour: string): Date {
    return this.changed.get(behaviour) ?? this.startedAt;
  }

  touch(behaviour: string): void {
    this.changed.set(behaviour, new Date());
    for (const f of this.listeners) f(behaviour);
  }

  /** Call `f` at every change of a behaviour's mtime (the FUSE layer keeps attributes until then). */
  onTouch(f: (behaviour: string) => void): void {
    this.listeners.push(f);
  }
}

export function attached(behaviour: string, p: PinnedLink): Attached {
  return { name: p.name, behaviour, hook: p.hook, progId: p.progId, linkId: p.linkId, object: p.object, mode: p.mode };
}
