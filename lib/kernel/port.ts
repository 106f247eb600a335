// The core's KernelPort over the addon and bpffs. The pins are the registry:
//   <root>/<behaviour>/<program's full name>   a link pin per attached program
//   <root>/<behaviour>/<name>-new, <name>-commit  an attach in flight (settled at start-up)
//   <root>/link-objects/<link id>              symlink to the object the program came from
//   <root>/link-digests/<link id>              symlink whose target is the digest of its bytes and settings
//   <root>/link-modes/<link id>                symlink whose target is its mode (enforce, monitor)
//   <root>/link-observers/<behaviour>          the behaviour's denial observer (bpf/krsi_observer.bpf.c)
//   <root>/events, events_lost, stats, reported  the shared maps (lib/kernel/events.ts)
// (bpffs refuses names with a dot; behaviour and program names never hold a
// '-', so neither name can clash with theirs.)
// Everything lives in bpffs, so it lives exactly as long as the pins: a
// reboot clears both, `rm -r <root>` removes both. krsifs holds no link fd
// once a program is pinned: removing a pin detaches its program.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, rename, statfs, symlink, unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { promisify } from 'node:util';
import { KrsiError } from '../errors.js';
import type { AttachedProgram, KernelLink, KernelPort, PinnedLink, Unpinned } from '../core/kernel-port.js';
import { MODES, type Mode } from '../core/grammar.js';
import { isPinName } from '../core/registry.js';
import { behaviourId } from '../core/behaviour-id.js';
import { SUBJECT, SUBJECT_GLOBAL, decodeCounts, subjectOf } from '../core/observer.js';
import * as kernel from './index.js';
import { reuseMapsOf, sharedMapPaths } from './events.js';
import { BEHAVIOUR_GLOBAL, BEHAVIOUR_ID_GLOBAL, HOOK_GLOBAL } from '../core/globals.js';

export const BPFFS = '/sys/fs/bpf';
export const DEFAULT_PIN_ROOT = `${BPFFS}/krsi`;
const BPF_FS_MAGIC = 0xcafe4a11;
const OBJECTS = 'link-objects';
const DIGESTS = 'link-digests';
const MODE_RECORDS = 'link-modes';
const RECORDS = [OBJECTS, DIGESTS, MODE_RECORDS];
const OBSERVERS = 'link-observers';

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

async function isBpffs(dir: string): Promise<boolean> {
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

export class BpffsKernelPort implements KernelPort {
  readonly readObject = kernel.readObject;
  readonly inspect = kernel.inspect;
  readonly loadAndAttach = kernel.loadAndAttach;
  readonly programInfo = kernel.progInfo;
  /** How long unpin waits for the kernel to let a link go. */
  releaseTimeoutMs = 3000;
  /** Told once about each foreign pin (not an LSM link, or a name krsifs never gives). */
  onForeign: ((behaviour: string, err: KrsiError) => void) | undefined;
  private readonly reported = new Set<string>();
  /**
   * Mode records already read, by link id (no record: enforce): a record is
   * written before its link is pinned and never changed, and link ids are not
   * reused, so a listing reads each once (not one pool round trip per program
   * per read).
   */
  private readonly modes = new Map<number, Mode>();

  constructor(private readonly state: PinRootState) {}

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

  private at(behaviour: string, name?: string): string {
    return name === undefined ? path.join(this.root, behaviour) : path.join(this.root, behaviour, name);
  }

  async ensurePinDir(behaviour: string): Promise<void> {
    this.usable();
    await mkdir(this.at(behaviour), { recursive: true, mode: 0o700 });
  }

  async pin(link: KernelLink, behaviour: string, name: string): Promise<void> {
    this.usable();
    await (link as kernel.Link).pin(this.at(behaviour, name));
  }

  async attachProgram(id: number, hook: string, behaviour: string, pin: string): Promise<AttachedProgram> {
    this.usable();
    const where = this.at(behaviour, pin);
    const a = await kernel.attachProgram(id, hook, where);
    let link: kernel.Link;
    try {
      link = await kernel.openPinnedLink(where);
    } catch (e) {
      await unlink(where).catch(() => {}); // the pin was the link's only holder: detached
      throw e;
    }
    return { name: a.name, progId: a.progId, linkId: a.linkId, link, pinned: pin };
  }

  async renamePin(behaviour: string, from: string, to: string): Promise<Unpinned | null> {
    const old = await this.read(behaviour, to).catch((e: KrsiError) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    // bpffs's rename is simple_rename: an existing `to` is unlinked in the same
    // step, so the name always resolves to one attached link
    await rename(this.at(behaviour, from), this.at(behaviour, to)).catch((e: unknown) => {
      throw KrsiError.from(e, `rename pin ${from} to ${to}`);
    });
    return old && { pin: old, released: await this.released(old) };
  }

  async unpin(behaviour: string, name: string): Promise<Unpinned> {
    const pin = await this.read(behaviour, name);
    await unlink(this.at(behaviour, name)).catch((e: unknown) => {
      throw KrsiError.from(e, `unpin ${this.at(behaviour, name)}`);
    });
    return { pin, released: await this.released(pin) };
  }

  async pins(behaviour: string): Promise<PinnedLink[]> {
    // one native call per read of a behaviour file, whatever the number of programs
    const all = await kernel.pinnedLinks(this.at(behaviour), path.join(this.root, OBJECTS));
    const own: Omit<PinnedLink, 'mode'>[] = [];
    for (const { foreign, ...p } of all) {
      const why = foreign ?? (isPinName(p.name) ? null : 'a name krsifs never gives a pin');
      if (why === null) own.push(p);
      else this.foreign(behaviour, p.name, why);
    }
    // the mode records not read yet, all at once (each is read once: see modes)
    const unread = own.filter((p) => !this.modes.has(p.linkId));
    if (unread.length > 0) await Promise.all(unread.map((p) => this.modeOf(p.linkId)));
    return own.map((p) => ({ ...p, mode: this.modes.get(p.linkId) ?? 'enforce' }));
  }

  /** Someone else's thing in a pin directory: said once, then left alone. */
  private foreign(behaviour: string, name: string, why: string): void {
    const where = this.at(behaviour, name);
    if (this.reported.has(where)) return;
    this.reported.add(where);
    this.onForeign?.(
      behaviour,
      new KrsiError('EEXIST', `${where}: ${why}, not a program krsifs attached: not listed and never detached by ` +
        `krsifs; remove it yourself (rm) if it should not be there`, { details: { pin: where } }),
    );
  }

  async pinnedBehaviours(): Promise<string[]> {
    if (this.state.error) return [];
    const ents = await readdir(this.root, { withFileTypes: true });
    return ents.filter((d) => d.isDirectory() && !d.name.includes('-')).map((d) => d.name);
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

  async observer(behaviour: string): Promise<{ linkId: number } | null> {
    if (this.state.error) return null;
    const link = await kernel.openPinnedLink(this.observerPin(behaviour)).catch((e: KrsiError) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (!link) return null;
    const linkId = link.id;
    await link.close();
    return { linkId };
  }

  async attachObserver(behaviour: string, hook: string): Promise<{ linkId: number }> {
    this.usable();
    await mkdir(path.join(this.root, OBSERVERS), { recursive: true, mode: 0o700 });
    const where = this.observerPin(behaviour);
    // a stale pin (an observer of a hook the catalogue no longer maps) goes first
    await unlink(where).catch(() => {});
    const { linkId } = await kernel.attachObserver(await observerObject(), hook, {
      globals: {
        [BEHAVIOUR_GLOBAL]: behaviour,
        [HOOK_GLOBAL]: hook,
        [BEHAVIOUR_ID_GLOBAL]: behaviourId(behaviour).toString(),
        [SUBJECT_GLOBAL]: SUBJECT[subjectOf(hook)],
      },
      reuseMaps: reuseMapsOf(sharedMapPaths(this.root)),
      pinPath: where,
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

  async recordObject(linkId: number, object: string, mode: Mode, digest?: string): Promise<void> {
    // every record before the pin (as the pin protocol wants): a crash in
    // between leaves records without a link, which adopt() prunes
    await this.record(OBJECTS, linkId, object);
    await this.record(MODE_RECORDS, linkId, mode);
    // a link attachProgram pinned (as NAME-new) may have been listed before its record
    this.modes.set(linkId, mode);
    if (digest !== undefined) await this.record(DIGESTS, linkId, digest);
  }

  /** No record (a link pinned by an older krsifs) or one this version cannot read: enforce, which is what it does. */
  private async modeOf(linkId: number): Promise<Mode> {
    const known = this.modes.get(linkId);
    if (known) return known;
    const m = await readlink(path.join(this.root, MODE_RECORDS, String(linkId))).catch(() => null);
    const mode = MODES.find((x) => x === m) ?? 'enforce';
    this.modes.set(linkId, mode);
    return mode;
  }

  private async record(what: string, linkId: number, target: string): Promise<void> {
    const dir = path.join(this.root, what);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // symlink(2) cannot replace: make it aside, rename it in
    const tmp = path.join(dir, `${linkId}-${process.pid}`);
    await unlink(tmp).catch(() => {});
    await symlink(target, tmp);
    await rename(tmp, path.join(dir, String(linkId)));
  }

  /** The digest recorded for link `linkId` at its attach; null when none was (an older krsifs, a crash). */
  async digestOf(linkId: number): Promise<string | null> {
    return readlink(path.join(this.root, DIGESTS, String(linkId))).catch(() => null);
  }

  async forgetObject(linkId: number): Promise<void> {
    this.modes.delete(linkId);
    for (const what of RECORDS) await unlink(path.join(this.root, what, String(linkId))).catch(() => {});
  }

  async pruneObjects(live: ReadonlySet<number>): Promise<void> {
    for (const id of this.modes.keys()) if (!live.has(id)) this.modes.delete(id);
    for (const what of RECORDS) {
      const dir = path.join(this.root, what);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const n of names) if (!live.has(Number(n))) await unlink(path.join(dir, n)).catch(() => {});
    }
  }

  /** A pin and what the kernel says about its link; the fd is closed again at once. */
  private async read(behaviour: string, name: string): Promise<PinnedLink> {
    const link = await kernel.openPinnedLink(this.at(behaviour, name));
    try {
      const info = await kernel.linkInfo(link.id);
      const object = await readlink(path.join(this.root, OBJECTS, String(link.id))).catch(() => null);
      return { name, linkId: link.id, progId: link.progId, progName: link.name, hook: info.hook, object, mode: await this.modeOf(link.id) };
    } finally {
      await link.close();
    }
  }

  /**
   * The kernel drops a removed pin's reference to its link after an RCU grace
   * period and a workqueue run, not in unlink(2): wait until the link id and
   * then the program are gone, so a detach has happened when the write that
   * asked for it returns. False when the link stays (another holder).
   */
  private async released(p: PinnedLink): Promise<boolean> {
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
