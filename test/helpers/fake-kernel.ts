// A double of the kernel layer for the core's own tests: bpffs and the
// kernel's links modelled in memory (a link is detached when its last
// reference, an fd or a pin, goes), with the REAL pin protocol
// (lib/kernel/pin-protocol.ts) run over that model, so that crashes at any
// step of it can be staged. Not evidence that the kernel path works: the VM
// suites are.
import { KrsiError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import type {
  AttachRequest,
  Attachment,
  Credentials,
  KernelPort,
  LoadedProgramFacts,
  ObjectFacts,
  ObjectSource,
  PinnedLink,
  Recovered,
  Unpinned,
} from '../../lib/core/kernel-port.js';
import type { LinkRecord } from '../../lib/kernel/link-records.js';
import { commit, detach, isTemporaryPin, settle, temporaryPin, type NewLink, type PinDirectory, type Records } from '../../lib/kernel/pin-protocol.js';

export interface FakeLink {
  id: number;
  progId: number;
  name: string;
  hook: string;
  /** fds plus pins: at 0 the kernel detaches the program */
  refs: number;
}

export abstract class FakeKernelBase implements KernelPort {
  readonly pinRoot: string = '/fake/bpf/krsi';
  /** What happened, in order: 'attach NAME PROGID HOOK', 'detach PROGID', … */
  events: string[] = [];
  links = new Map<number, FakeLink>();
  dirs = new Map<string, Map<string, number>>();
  records = new Map<number, LinkRecord>();
  /** Pin names whose pin fails (ENOSPC). */
  failPin = new Set<string>();
  /** Sources read and not closed yet. */
  open = 0;
  /** Program ids handed out (link ids derive from them). */
  protected nextId = 100;

  /** What an object's bytes hold. */
  protected abstract factsOf(data: Buffer): ObjectFacts;
  /** Load and attach an object's programs; each new link holds one reference (the loader's fd). */
  protected abstract load(source: ObjectSource, req: AttachRequest): Promise<FakeLink[]>;
  abstract readObject(writer: Credentials, path: string): Promise<ObjectSource>;
  abstract programInfo(id: number): Promise<LoadedProgramFacts>;

  /** An ObjectSource for bytes at `path`, counted until closed. */
  protected source(data: Buffer, path: string, extra: Partial<ObjectSource> = {}): ObjectSource {
    this.open++;
    let closed = false;
    return {
      data, path, facts: extra.program ? undefined : this.factsOf(data), ...extra,
      close: () => {
        if (!closed) this.open--;
        closed = true;
      },
    };
  }

  protected put(id: number): void {
    const l = this.links.get(id)!;
    if (--l.refs === 0) {
      this.links.delete(id);
      this.events.push(`detach ${l.progId}`);
    }
  }

  /** rm of a pin behind krsifs's back */
  rm(behaviour: string, name: string): void {
    const id = this.dirs.get(behaviour)!.get(name)!;
    this.dirs.get(behaviour)!.delete(name);
    this.put(id);
  }

  // bpffs, as the pin protocol sees it; tests replace these to stage a crash

  async pin(linkId: number, behaviour: string, name: string): Promise<void> {
    if (this.failPin.has(name)) throw new KrsiError('ENOSPC', `pin ${name}: no space left on device`);
    const dir = this.dirs.get(behaviour)!;
    if (dir.has(name)) throw new KrsiError('EEXIST', `pin ${name}: file exists`);
    dir.set(name, linkId);
    this.links.get(linkId)!.refs++;
  }

  async renamePin(behaviour: string, from: string, to: string): Promise<void> {
    const dir = this.dirs.get(behaviour)!;
    const old = dir.get(to);
    dir.set(to, dir.get(from)!);
    dir.delete(from);
    if (old !== undefined) this.put(old);
  }

  async unpin(behaviour: string, name: string): Promise<void> {
    const dir = this.dirs.get(behaviour);
    if (!dir?.has(name)) throw new KrsiError('ENOENT', `unpin ${name}: no such file`);
    const id = dir.get(name)!;
    dir.delete(name);
    this.put(id);
  }

  protected read(behaviour: string, name: string): PinnedLink {
    const l = this.links.get(this.dirs.get(behaviour)!.get(name)!)!;
    const r = this.records.get(l.id);
    return { name, linkId: l.id, progId: l.progId, hook: l.hook, object: r?.object ?? null, mode: r?.mode ?? 'enforce' };
  }

  async pins(behaviour: string): Promise<PinnedLink[]> {
    return [...(this.dirs.get(behaviour)?.keys() ?? [])].map((n) => this.read(behaviour, n)).sort((a, b) => a.linkId - b.linkId);
  }

  private dir(behaviour: string): PinDirectory {
    if (!this.dirs.has(behaviour)) this.dirs.set(behaviour, new Map());
    return {
      path: `${this.pinRoot}/${behaviour}`,
      pins: () => this.pins(behaviour),
      rename: (from, to) => this.renamePin(behaviour, from, to),
      unpin: (name) => this.unpin(behaviour, name),
      released: async (pin) => !this.links.has(pin.linkId),
    };
  }

  private readonly recordsPort: Records = {
    write: async (id, r) => void this.records.set(id, r),
    forget: async (id) => void this.records.delete(id),
  };

  // the port

  async attach(source: ObjectSource, req: AttachRequest): Promise<Attachment> {
    const dir = this.dir(req.behaviour);
    let fresh: FakeLink[];
    if (source.program) {
      const p = await this.programInfo(source.program.id);
      if (p.type !== 'lsm' || p.hook !== req.hook) throw new KrsiError('EINVAL', `attach program ${source.program.id}: not for ${req.hook}`);
      const id = source.program.id + 5000 + this.nextId++;
      fresh = [{ id, progId: source.program.id, name: req.name!, hook: req.hook, refs: 1 }];
      this.links.set(id, fresh[0]!);
      this.events.push(`attach ${p.name} ${source.program.id} ${req.hook}`);
    } else {
      fresh = await this.load(source, req);
    }
    const before = await this.pins(req.behaviour);
    // the addon pins each new link as NAME-new as it attaches, then closes its fds
    const pinned: NewLink[] = [];
    try {
      for (const l of fresh) {
        await this.pin(l.id, req.behaviour, temporaryPin(l.name));
        pinned.push({ name: l.name, progId: l.progId, linkId: l.id });
      }
    } catch (e) {
      for (const l of pinned) this.dirs.get(req.behaviour)!.delete(temporaryPin(l.name)), this.put(l.linkId);
      throw e;
    } finally {
      for (const l of fresh) this.put(l.id);
    }
    const replaced = await commit(dir, this.recordsPort, pinned, { object: req.object, mode: req.mode, digest: await req.digest }, before, silentLogger);
    return { attached: pinned.map((l) => this.read(req.behaviour, l.name)), replaced };
  }

  async detach(behaviour: string, name: string): Promise<Unpinned> {
    return detach(this.dir(behaviour), this.recordsPort, name);
  }

  async list(behaviour: string): Promise<PinnedLink[]> {
    return (await this.pins(behaviour)).filter((p) => !isTemporaryPin(p.name));
  }

  async pinnedBehaviours(): Promise<string[]> {
    return [...this.dirs.keys()];
  }

  async recover(): Promise<Recovered[]> {
    const out: Recovered[] = [];
    const live = new Set<number>();
    for (const b of this.dirs.keys()) {
      out.push(...(await settle(this.dir(b), this.recordsPort, b)));
      for (const p of await this.pins(b)) live.add(p.linkId);
    }
    for (const id of this.records.keys()) if (!live.has(id)) this.records.delete(id);
    return out;
  }

  async linksOnHook(hook: string): Promise<number> {
    return [...this.links.values()].filter((l) => l.hook === hook).length;
  }

  async digestOf(linkId: number): Promise<string | null> {
    return this.records.get(linkId)?.digest ?? null;
  }

  // the observer: off by default (every hook "returns void")
  observe = false;
  /** The kernel's limit of links per hook. */
  limit = 38;
  observers = new Map<string, number>();
  counters = new Map<string, { denied: number; monitored: number }>();

  async hasObserver(behaviour: string): Promise<boolean> {
    return this.observers.has(behaviour);
  }

  async attachObserver(behaviour: string, hook: string): Promise<{ linkId: number }> {
    if (!this.observe) throw new KrsiError('EOPNOTSUPP', `observer: hook ${hook} returns void: it has no verdict to observe`, { details: { returnsVoid: true } });
    if ((await this.linksOnHook(hook)) >= this.limit) throw new KrsiError('E2BIG', `observer: attach fexit to bpf_lsm_${hook}: argument list too long`);
    const id = this.nextId++ + 9000;
    this.links.set(id, { id, progId: id, name: 'krsi_observer', hook, refs: 1 });
    this.observers.set(behaviour, id);
    this.events.push(`observe ${behaviour}`);
    return { linkId: id };
  }

  async detachObserver(behaviour: string): Promise<boolean> {
    const id = this.observers.get(behaviour);
    this.counters.delete(behaviour);
    if (id === undefined) return false;
    this.observers.delete(behaviour);
    this.put(id);
    this.events.push(`unobserve ${behaviour}`);
    return true;
  }

  async observedBehaviours(): Promise<string[]> {
    return [...this.observers.keys()];
  }

  async counts(behaviour: string): Promise<{ denied: number; monitored: number }> {
    return this.counters.get(behaviour) ?? { denied: 0, monitored: 0 };
  }
}
