// The core's KernelPort over the addon and bpffs. The pins are the registry:
//   <root>/<behaviour>/<program's full name>   a link pin per attached program
//   <root>/<behaviour>/<name>-new, <name>-commit  an attach in flight (pin-protocol.ts)
//   <root>/link-records/<link id>              what the program came from (link-records.ts)
//   <root>/link-observers/<behaviour>          the behaviour's denial observer (bpf/krsi_observer.bpf.c)
//   <root>/observer-programs/<behaviour>-<hook>  its program, kept loaded while it has no link
//   <root>/events, events_lost, stats, reported  the shared maps (lib/kernel/events.ts)
// (bpffs refuses names with a dot; behaviour and program names never hold a
// '-', so neither name can clash with theirs.)
// Everything lives in bpffs, so it lives exactly as long as the pins: a
// reboot clears both, `rm -r <root>` removes both. krsifs holds no link fd
// once a program is pinned: removing a pin detaches its program.
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, statfs, unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { KrsiError } from '../errors.js';
import type { AttachRequest, Attachment, Credentials, KernelPort, ObjectSource, PinnedLink, Recovered, Unpinned } from '../core/kernel-port.js';
import { silentLogger, type Logger } from '../log.js';
import { companionOf } from '../core/companion.js';
import { LinkRecords, parseRecord } from './link-records.js';
import { onBpffs, onBpffsAsync } from './bpffs.js';
import { listingTurn } from './listing-turn.js';
import { KeptListings } from './kept-listings.js';
import { commit, detach, isPinName, isTemporaryPin, settle, temporaryPin, type NewLink, type PinDirectory } from './pin-protocol.js';
import { behaviourId } from '../core/behaviour-id.js';
import { SUBJECT, SUBJECT_GLOBAL, decodeCounts, subjectOf } from '../core/observer.js';
import * as kernel from './index.js';
import { reuseMapsOf, sharedMapPaths } from './events.js';
import { BEHAVIOUR_GLOBAL, BEHAVIOUR_ID_GLOBAL, HOOK_GLOBAL } from '../core/globals.js';

export const BPFFS = '/sys/fs/bpf';
export const DEFAULT_PIN_ROOT = `${BPFFS}/krsi`;
const BPF_FS_MAGIC = 0xcafe4a11;
const OBSERVERS = 'link-observers';
const OBSERVER_PROGRAMS = 'observer-programs';

// The observer object ships with the product: bpf/obj/ in a checkout (and
// the VM image), the top of PREFIX/lib/krsifs once installed (lib/install.ts).
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const OBSERVER_OBJECTS = [path.join(packageRoot, 'bpf/obj/krsi_observer.o'), path.join(packageRoot, 'krsi_observer.o')];
let observerBytes: Promise<Buffer> | undefined;

function observerObject(): Promise<Buffer> {
  observerBytes ??= (async () => {
    for (const p of OBSERVER_OBJECTS) {
      const b = await readFile(p).catch(() => null);
      if (b) return b;
    }
    throw new KrsiError('ENOENT', `the observer object is missing (looked in ${OBSERVER_OBJECTS.join(', ')}): run npm run build`);
  })();
  observerBytes.catch(() => (observerBytes = undefined));
  return observerBytes;
}

/** Whether `dir` is on a bpf filesystem; false when it cannot be asked. */
export async function isBpffs(dir: string): Promise<boolean> {
  try {
    return (await statfs(dir)).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

export interface PinRootState {
  root: string;
  /** Set when krsifs mounted bpffs at /sys/fs/bpf itself. */
  mounted: boolean;
  /** Why pins are impossible here; null when the root is usable. */
  error: KrsiError | null;
}

/**
 * Make `root` usable: mount bpffs at /sys/fs/bpf when the root is under it
 * and it is not a bpf mount, then mkdir -p the root. Never throws: a root
 * that cannot be used comes back with the error every attach will get.
 */
export async function preparePinRoot(root: string): Promise<PinRootState> {
  let mounted = false;
  const fail = (code: string, why: string) => ({
    root,
    mounted,
    error: new KrsiError(code, `pin root ${root}: ${why}`, { details: { pinRoot: root } }),
  });
  const under = root === BPFFS || root.startsWith(BPFFS + '/');
  if (under && !(await isBpffs(BPFFS))) {
    try {
      // loaded here only: child_process (with net, dgram, streams) is 2 MiB of an idle daemon's RSS
      const { execFile } = await import('node:child_process');
      await promisify(execFile)('mount', ['-t', 'bpf', 'bpf', BPFFS]);
      mounted = true;
    } catch (e) {
      const msg = ((e as { stderr?: string }).stderr || (e as Error).message).trim();
      return fail('EPERM', `${BPFFS} is not a bpf filesystem and mounting one there failed (${msg}); ` +
        `mount it (mount -t bpf bpf ${BPFFS}) or pass --pin-root DIR on a bpf filesystem`);
    }
  }
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
  } catch (e) {
    const err = KrsiError.from(e);
    return fail(err.code, `mkdir: ${err.message}`);
  }
  if (!(await isBpffs(root))) {
    return fail('ENOTSUP', `not on a bpf filesystem: links can only be pinned in bpffs (mount -t bpf bpf DIR)`);
  }
  return { root, mounted, error: null };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return false;
  } catch (e) {
    if ((e as KrsiError).code === 'ENOENT') return true;
    throw e;
  }
}

/** A behaviour's pin directory in bpffs. */
class BpffsPinDirectory implements PinDirectory {
  constructor(
    readonly path: string,
    /** The pin root, watched with the directory: renamed, it holds other pins. */
    private readonly root: string,
    private readonly kept: KeptListings<PinnedLink>,
    private readonly records: LinkRecords,
    private readonly releaseTimeoutMs: number,
    /** Someone else's pin in the directory: why it is not ours. */
    private readonly foreign: (name: string, why: string) => void,
  ) {}

  private at(name: string): string {
    return path.join(this.path, name);
  }

  /**
   * Decision: a behaviour's pins are read synchronously, on the loop, in one
   * native call. Bound: its directory holds the links on one hook, which the
   * kernel caps (38 on 6.1 and 6.12, observer included), their NAME-new
   * twins while an attach is in flight, and the companions of its objects;
   * each pin is in bpffs under the daemon's own 0700 root and costs five
   * syscalls on objects in memory (0.1–0.2 ms each under TCG; 38 pins about
   * 6 ms, natively tens of microseconds). Through the pool, a read paid a
   * thread hand-off each way (more than the work for a few pins), and
   * waited behind every other request's file work there. One listing per loop turn
   * (listingTurn): one that follows another (`stats` reads every
   * behaviour's: 570 pins when every file is full) waits for the next turn,
   * so the loop is never held for more than one behaviour. A listing is
   * kept while bpffs says none of its directories changed (KeptListings):
   * a `cat` then asks the kernel one read(2) instead of five syscalls a pin.
   */
  async pins(): Promise<PinnedLink[]> {
    await listingTurn();
    return this.kept.get([this.root, this.path, this.records.dir], () => {
      const own: PinnedLink[] = [];
      for (const { foreign, object: record, ...p } of kernel.pinnedLinks(this.path, this.records.dir)) {
        const why = foreign ?? (isPinName(p.name) ? null : 'a name krsifs never gives a pin');
        if (why !== null) {
          this.foreign(p.name, why);
          continue;
        }
        const { object, mode } = parseRecord(record);
        own.push({ ...p, object, mode });
      }
      return own;
    });
  }

  // bpffs's rename is simple_rename: an existing `to` is unlinked in the same
  // step, so the name always resolves to one attached link. Both may release
  // a link, which costs the thread that asks: on the pool (bpffs.ts).
  async rename(from: string, to: string): Promise<void> {
    await onBpffsAsync(() => rename(this.at(from), this.at(to)), `rename pin ${from} to ${to}`);
  }

  async unpin(name: string): Promise<void> {
    await onBpffsAsync(() => unlink(this.at(name)), `unpin ${this.at(name)}`);
  }

  /**
   * The kernel drops a removed pin's reference to its link after an RCU grace
   * period and a workqueue run, not in unlink(2): wait until the link id and
   * then the program are gone, so a detach has happened when the write that
   * asked for it returns. False when the link stays (another holder).
   */
  async released(p: PinnedLink): Promise<boolean> {
    const until = Date.now() + this.releaseTimeoutMs;
    let wait = 1;
    while (!(await gone(() => kernel.linkInfo(p.linkId)))) {
      if (Date.now() > until) return false;
      await sleep(wait);
      wait = Math.min(wait * 2, 25);
    }
    // the program is put after the link is unhooked: once it is gone, so is
    // the hook's reference (a program someone else holds stays: do not wait long)
    const progUntil = Date.now() + 200;
    while (!(await gone(() => kernel.progInfo(p.progId))) && Date.now() < progUntil) await sleep(2);
    return true;
  }
}

export class BpffsKernelPort implements KernelPort {
  readonly programInfo = kernel.progInfo;
  /** How long a detach waits for the kernel to let a link go. */
  releaseTimeoutMs = 3000;
  /** Told once about each foreign pin (not an LSM link, or a name krsifs never gives). */
  onForeign: ((behaviour: string, err: KrsiError) => void) | undefined;
  private readonly reported = new Set<string>();
  private readonly records: LinkRecords;
  private readonly kept = new KeptListings<PinnedLink>();
  /** The parsed objects behind the sources this port read, until they load or close. */
  private readonly opened = new WeakMap<ObjectSource, kernel.OpenedObject>();

  constructor(
    private readonly state: PinRootState,
    private readonly log: Logger = silentLogger,
  ) {
    this.records = new LinkRecords(state.root);
  }

  get pinRoot(): string {
    return this.state.root;
  }

  private get root(): string {
    return this.state.root;
  }

  private usable(): void {
    const e = this.state.error;
    if (e) throw new KrsiError(e.errno, e.message, { details: { ...e.details } });
  }

  private dir(behaviour: string): BpffsPinDirectory {
    return new BpffsPinDirectory(path.join(this.root, behaviour), this.root, this.kept, this.records, this.releaseTimeoutMs, (name, why) =>
      this.foreign(behaviour, name, why));
  }

  /** Create the behaviour's pin directory. Errors: why pins are impossible here (no bpffs, …). */
  async ensurePinDir(behaviour: string): Promise<void> {
    this.usable();
    onBpffs(() => mkdirSync(path.join(this.root, behaviour), { recursive: true, mode: 0o700 }), `mkdir ${behaviour}`);
  }

  async readObject(writer: Credentials, where: string, signal?: AbortSignal): Promise<ObjectSource> {
    // read and parsed by libbpf on the reader's thread: one round trip
    const r = await kernel.readObject(writer, where, signal);
    const object = r.object;
    if (!object) return { path: r.path, data: r.data, program: r.program, close() {} };
    const source: ObjectSource = { path: r.path, data: r.data, facts: object.facts, close: () => object.close() };
    this.opened.set(source, object);
    return source;
  }

  async attach(source: ObjectSource, req: AttachRequest): Promise<Attachment> {
    await this.ensurePinDir(req.behaviour);
    const dir = this.dir(req.behaviour);
    // what the new programs will replace is read, and the digest hashed, while they load
    const [loaded, listed, digest] = await Promise.allSettled([
      source.program ? this.attachLoaded(source.program.id, req, dir).then((l) => [l]) : this.load(source, req, dir),
      dir.pins(),
      req.digest,
    ]);
    if (loaded.status === 'rejected') throw loaded.reason;
    const links = loaded.value;
    if (listed.status === 'rejected' || digest.status === 'rejected') {
      // attached and pinned as NAME-new, but nothing may stay of a write that fails
      for (const l of links) await dir.unpin(temporaryPin(l.name)).catch(() => {});
      throw listed.status === 'rejected' ? listed.reason : (digest as PromiseRejectedResult).reason;
    }
    const before = listed.value;
    const record = { object: req.object, mode: req.mode, digest: digest.value };
    const replaced = await commit(dir, this.records, links, record, before, this.log);
    const runsOn = (name: string) => {
      const p = source.facts?.programs.find((x) => x.name === name);
      return (p && companionOf(p)) ?? req.hook;
    };
    const attached = links.map((l) => ({
      name: l.name, linkId: l.linkId, progId: l.progId, hook: runsOn(l.name), object: req.object, mode: req.mode,
    }));
    return { attached, replaced };
  }

  /** A program another loader loaded, attached by a link of our own, pinned as NAME-new as it attaches. */
  private async attachLoaded(id: number, req: AttachRequest, dir: BpffsPinDirectory): Promise<NewLink> {
    const name = req.name ?? `prog_${id}`;
    const a = await kernel.attachProgram(id, req.hook, path.join(dir.path, temporaryPin(name)));
    return { name, progId: a.progId, linkId: a.linkId };
  }

  /** Every program of an object, loaded, attached and pinned as NAME-new by the addon in one worker; none when one fails. */
  private async load(source: ObjectSource, req: AttachRequest, dir: BpffsPinDirectory): Promise<NewLink[]> {
    // an object loads once: a second attempt (the observer stepped aside) parses the bytes again
    let object = this.opened.get(source);
    this.opened.delete(source);
    object ??= await kernel.openObject(source.data, path.basename(source.path));
    try {
      const pinPaths = Object.fromEntries(object.facts.programs.map((p) => [p.name, path.join(dir.path, temporaryPin(p.name))]));
      return await object.loadAndAttach(req.hook, { globals: req.globals, reuseMaps: req.reuseMaps, pinPaths });
    } finally {
      object.close();
    }
  }

  async detach(behaviour: string, name: string): Promise<Unpinned> {
    return detach(this.dir(behaviour), this.records, name);
  }

  async list(behaviour: string): Promise<PinnedLink[]> {
    if (this.state.error) return [];
    return (await this.dir(behaviour).pins()).filter((p) => !isTemporaryPin(p.name));
  }

  async pinnedBehaviours(): Promise<string[]> {
    if (this.state.error) return [];
    const ents = await readdir(this.root, { withFileTypes: true });
    return ents.filter((d) => d.isDirectory() && !d.name.includes('-')).map((d) => d.name);
  }

  async recover(): Promise<Recovered[]> {
    const out: Recovered[] = [];
    const live = new Set<number>();
    for (const behaviour of await this.pinnedBehaviours()) {
      const dir = this.dir(behaviour);
      out.push(...(await settle(dir, this.records, behaviour)));
      for (const p of await dir.pins()) live.add(p.linkId); // a pin that could not be settled keeps its record
    }
    await this.records.migrate(live);
    await this.records.prune(live);
    // kept observer programs: the ones in use are held by their links
    await rm(path.join(this.root, OBSERVER_PROGRAMS), { recursive: true, force: true });
    return out;
  }

  async digestOf(linkId: number): Promise<string | null> {
    return (await this.records.read(linkId)).digest;
  }

  /** Someone else's thing in a pin directory: said once, then left alone. */
  private foreign(behaviour: string, name: string, why: string): void {
    const where = path.join(this.root, behaviour, name);
    if (this.reported.has(where)) return;
    this.reported.add(where);
    this.onForeign?.(
      behaviour,
      new KrsiError('EEXIST', `${where}: ${why}, not a program krsifs attached: not listed and never detached by ` +
        `krsifs; remove it yourself (rm) if it should not be there`, { details: { pin: where } }),
    );
  }

  async linksOnHook(hook: string): Promise<number> {
    let n = 0;
    for (const id of await kernel.linkIds()) {
      const info = await kernel.linkInfo(id).catch(() => null); // gone meanwhile
      if (info?.hook === hook) n++;
    }
    return n;
  }

  private observerPin(behaviour: string): string {
    return path.join(this.root, OBSERVERS, behaviour);
  }

  async hasObserver(behaviour: string): Promise<boolean> {
    return !this.state.error && existsSync(this.observerPin(behaviour));
  }

  /**
   * The observer's program, loaded for one behaviour on one hook, stays
   * pinned when its link goes with the behaviour's last program: the next
   * first program links it again without a second verifier run. A start-up
   * and an ephemeral stop drop these (recover), so that a new observer
   * object or a new ring is loaded fresh.
   */
  private observerProgram(behaviour: string, hook: string): string {
    return path.join(this.root, OBSERVER_PROGRAMS, `${behaviour}-${hook}`);
  }

  async attachObserver(behaviour: string, hook: string): Promise<{ linkId: number }> {
    this.usable();
    const where = this.observerPin(behaviour);
    const kept = this.observerProgram(behaviour, hook);
    onBpffs(() => {
      mkdirSync(path.join(this.root, OBSERVERS), { recursive: true, mode: 0o700 });
      mkdirSync(path.dirname(kept), { recursive: true, mode: 0o700 });
      // a stale pin (an observer of a hook the catalogue no longer maps) goes first
      rmSync(where, { force: true });
    }, `observer pin ${where}`);
    if (existsSync(kept)) {
      try {
        return await kernel.attachPinnedTrace(kept, where);
      } catch (e) {
        if (KrsiError.from(e).code === 'E2BIG') throw e;
        rmSync(kept, { force: true }); // unusable: load a fresh one
      }
    }
    const { linkId } = await kernel.attachObserver(await observerObject(), hook, {
      globals: {
        [BEHAVIOUR_GLOBAL]: behaviour,
        [HOOK_GLOBAL]: hook,
        [BEHAVIOUR_ID_GLOBAL]: behaviourId(behaviour).toString(),
        [SUBJECT_GLOBAL]: SUBJECT[subjectOf(hook)],
      },
      reuseMaps: reuseMapsOf(sharedMapPaths(this.root)),
      pinPath: where,
      programPin: kept,
    });
    return { linkId };
  }

  async detachObserver(behaviour: string): Promise<boolean> {
    if (this.state.error) return false;
    let had = true;
    await unlink(this.observerPin(behaviour)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') had = false;
      else throw KrsiError.from(e, `remove observer pin ${this.observerPin(behaviour)}`);
    });
    // the counters run since the behaviour's first attach: a later one starts at 0
    try {
      kernel.mapDelete(sharedMapPaths(this.root).stats, behaviourId(behaviour));
    } catch (e) {
      if (KrsiError.from(e).code !== 'ENOENT') throw e;
    }
    return had;
  }

  async observedBehaviours(): Promise<string[]> {
    if (this.state.error) return [];
    return readdir(path.join(this.root, OBSERVERS)).catch(() => [] as string[]);
  }

  async counts(behaviour: string): Promise<{ denied: number; monitored: number }> {
    if (this.state.error) return decodeCounts(null);
    try {
      return decodeCounts(kernel.mapLookup(sharedMapPaths(this.root).stats, behaviourId(behaviour)));
    } catch (e) {
      if (KrsiError.from(e).code === 'ENOENT') return decodeCounts(null); // no map yet: nothing counted
      throw e;
    }
  }
}
