// The programs attached through each behaviour file, by full program name.
import type { KernelLink } from './kernel-port.js';

export interface Attached {
  /** Full program name from the object (the kernel keeps only 15 characters). */
  name: string;
  behaviour: string;
  hook: string;
  progId: number;
  linkId: number;
  /** The object's path as the writer resolved it. */
  object: string;
  link: KernelLink;
  attachedAt: Date;
}

export class Registry {
  private byBehaviour = new Map<string, Map<string, Attached>>();
  private changed = new Map<string, Date>();

  constructor(private readonly startedAt = new Date()) {}

  list(behaviour: string): Attached[] {
    return [...(this.byBehaviour.get(behaviour)?.values() ?? [])];
  }

  get(behaviour: string, name: string): Attached | undefined {
    return this.byBehaviour.get(behaviour)?.get(name);
  }

  /** Record `a`, returning what it replaces (same behaviour, same full name). */
  put(a: Attached): Attached | undefined {
    let m = this.byBehaviour.get(a.behaviour);
    if (!m) this.byBehaviour.set(a.behaviour, (m = new Map()));
    const old = m.get(a.name);
    m.set(a.name, a);
    this.touch(a.behaviour);
    return old;
  }

  remove(behaviour: string, name: string): void {
    if (this.byBehaviour.get(behaviour)?.delete(name)) this.touch(behaviour);
  }

  /** When the file's listing last changed: its mtime. */
  changedAt(behaviour: string): Date {
    return this.changed.get(behaviour) ?? this.startedAt;
  }

  private touch(behaviour: string): void {
    this.changed.set(behaviour, new Date());
  }
}
