// The kernel layer, typed: a thin layer over the addon's libbpf exports
// (addon/bpf_*.cc). A function returns a Promise when its work runs on a
// libuv thread (readObject: on a thread of its own); the few that run on the
// event loop (small steps on objects in memory) say "Synchronous".
// Failures are KrsiError (errno, code, message, verifierLog for loads, details).
import { native } from '../addon.js';
import type { MadeLink, LinkInfo, PinnedLinkInfo, ProgInfo, ReadResult } from './types.js';
import { elfProblem, notAnObject, openFailure, openObject, wrapOpened, type NativeOpened } from './object.js';

export type * from './types.js';
import type { Credentials } from '../core/kernel-port.js';
import { KrsiError } from '../errors.js';

/** Bounds on object reads (see readObject). */
export interface ObjectReadLimits {
  /** How long a writer waits for its object before ETIMEDOUT. */
  timeoutMs: number;
  /** Reads in flight (abandoned ones included) per writer process. */
  perWriter: number;
  /** Reads in flight (abandoned ones included) in all. */
  total: number;
}

function envTimeout(): number {
  const v = process.env.KRSIFS_OBJECT_READ_TIMEOUT_MS;
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n > 0 ? n : 30_000;
}

/**
 * The limits every read uses, changeable (tests). The timeout comes from
 * KRSIFS_OBJECT_READ_TIMEOUT_MS when it is set, else 30 s.
 */
export const objectReadLimits: ObjectReadLimits = { timeoutMs: envTimeout(), perWriter: 4, total: 64 };

const readsOf = new Map<number, number>();
let readsInFlight = 0;

/** Object reads whose thread has not ended yet (abandoned ones included), in all and per writer process. */
export function objectReadsInFlight(): { total: number; byWriter: Map<number, number> } {
  return { total: readsInFlight, byWriter: new Map(readsOf) };
}

const MAX_ID = 2 ** 32 - 2;
const isId = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_ID;

/**
 * The writer as the addon takes it, checked here: nothing unchecked crosses.
 * Packed: pid, tgid, fsuid, fsgid, CapEff's low and high words, the groups.
 */
function nativeWriter(w: Credentials): Uint32Array {
  if (!Number.isInteger(w.pid) || w.pid <= 0 || w.pid > 2 ** 31 - 1) throw new KrsiError('ESRCH', `no such process: pid ${w.pid}`);
  if (!isId(w.fsuid) || !isId(w.fsgid)) throw new TypeError(`readObject: bad fsuid/fsgid ${w.fsuid}/${w.fsgid}`);
  if (!Array.isArray(w.groups) || w.groups.length > 65536 || !w.groups.every(isId)) {
    throw new TypeError('readObject: groups must be at most 65536 gids');
  }
  if (typeof w.capEff !== 'bigint' || w.capEff < 0n || w.capEff >= 1n << 64n) {
    throw new TypeError('readObject: capEff must be a 64-bit bigint');
  }
  // Capabilities held in a user namespace of its own mean nothing here.
  const capEff = w.inDaemonUserNs ? w.capEff : 0n;
  const tgid = Number.isInteger(w.tgid) && w.tgid > 0 && w.tgid <= 2 ** 31 - 1 ? w.tgid : w.pid;
  return Uint32Array.from([w.pid, tgid, w.fsuid, w.fsgid, Number(capEff & 0xffffffffn), Number(capEff >> 32n), ...w.groups]);
}

const seconds = (ms: number) => `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)} s`;

/**
 * Read the BPF object at `path` as the writer would read it itself: resolved
 * in its root and from its cwd (in its mount namespace), opened with its file
 * access rights (fsuid, fsgid, groups, its effective capabilities ∩ ours).
 * The file is read once and opened by libbpf on the same thread: `object`
 * holds its facts and loads it (ENOEXEC, with details.object, when the file
 * is no BPF object).
 *
 * Each read runs on a thread of its own (addon/bpf_read.cc), never on the
 * libuv pool, so a file on a filesystem that does not answer holds its own
 * writer only. The wait is bounded (`timeoutMs`, default
 * objectReadLimits.timeoutMs): then ETIMEDOUT, and the thread is abandoned
 * (its result is dropped when it comes). `signal` (the writer is being
 * killed) rejects at once with EINTR, the same way. An abandoned read still
 * counts against the limits until its thread ends.
 *
 * Errors: ENOENT missing, EISDIR directory, ENOEXEC not a regular file or a
 * kernel interface file (sysfs, bpffs, …), E2BIG over 64 MiB, EXDEV through a
 * /proc magic link or into /proc, EACCES/ELOOP/ENOTDIR/ENAMETOOLONG as the
 * writer's own open would say, ESRCH no such process, EAGAIN too many reads in
 * flight, ETIMEDOUT no answer in time, EINTR aborted.
 */
export function readObject(
  writer: Credentials,
  path: string,
  signal?: AbortSignal,
  opts: { timeoutMs?: number } = {},
): Promise<ReadResult> {
  let w: ReturnType<typeof nativeWriter>;
  try {
    w = nativeWriter(writer);
  } catch (e) {
    return Promise.reject(e);
  }
  const what = `read object ${path}`;
  if (signal?.aborted) return Promise.reject(new KrsiError('EINTR', `${what}: the writer was killed; nothing was read`));
  const tgid = Number.isInteger(writer.tgid) && writer.tgid > 0 ? writer.tgid : writer.pid;
  const mine = readsOf.get(tgid) ?? 0;
  const limits = objectReadLimits;
  if (mine >= limits.perWriter) {
    return Promise.reject(new KrsiError('EAGAIN',
      `${what}: process ${tgid} already has ${mine} object reads in flight (at most ${limits.perWriter}); ` +
        'the files of earlier ones are on a filesystem that has not answered yet'));
  }
  if (readsInFlight >= limits.total) {
    return Promise.reject(new KrsiError('EAGAIN',
      `${what}: ${readsInFlight} object reads are in flight (at most ${limits.total}); ` +
        'the files of earlier ones are on filesystems that have not answered yet'));
  }
  const timeoutMs = opts.timeoutMs ?? limits.timeoutMs;
  readsOf.set(tgid, mine + 1);
  readsInFlight++;
  type NativeRead = Omit<ReadResult, 'object'> & { object?: NativeOpened; openError?: KrsiError };
  const read = (native.readObject(w, path) as Promise<NativeRead>).then(({ object, openError, ...r }): ReadResult => {
    // libbpf opened the bytes (or failed to): the header's own words come first
    const problem = object || openError ? elfProblem(r.data) : '';
    if (problem) {
      object?.handle.close();
      throw notAnObject(problem, r.path);
    }
    if (openError) throw openFailure(openError, r.path);
    return object ? { ...r, object: wrapOpened(object, r.data) } : r;
  }).finally(() => {
    readsInFlight--;
    const n = (readsOf.get(tgid) ?? 1) - 1;
    if (n > 0) readsOf.set(tgid, n);
    else readsOf.delete(tgid);
  });
  return new Promise<ReadResult>((resolve, reject) => {
    let settled = false;
    const done = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(new KrsiError('EINTR', `${what}: the writer was killed while its object was being read; nothing was done`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new KrsiError('ETIMEDOUT',
        `${what}: the filesystem holding ${path} did not answer in ${seconds(timeoutMs)}; nothing was done`,
        { details: { object: path } }));
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    read.then(
      (r) => {
        if (settled) return r.object?.close(); // nobody waits for it any more
        done();
        resolve(r);
      },
      (e: unknown) => {
        done();
        reject(e);
      },
    );
  });
}

export { openObject };

export { hasHook, kernelHooks } from './hooks.js';

/**
 * Attach a program that is already loaded (by id) to `hook` with a link of
 * our own, pinned at `pinPath` (pinnedLinks lists it). The program
 * must be an LSM program loaded for `hook`.
 * Errors: ENOENT no such program, EINVAL not LSM / loaded for another hook /
 * not lsm_mac, E2BIG hook full, the pin's errno.
 */
export function attachProgram(id: number, hook: string, pinPath: string): Promise<MadeLink> {
  return native.attachProgram(id, hook, pinPath);
}


/**
 * Every link pinned in bpffs directory `dir`, sorted by link id, with the
 * hook it runs on and (when `objectsDir` holds a symlink named by its link
 * id) the object it came from. Synchronous, on the loop: call it for one
 * behaviour's directory only (the bound: lib/kernel/port.ts list). A missing
 * directory is empty; pins that vanish meanwhile are left out; a pin that is
 * neither an LSM link nor a companion's comes with `foreign` (why).
 */
export function pinnedLinks(dir: string, objectsDir?: string): PinnedLinkInfo[] {
  return objectsDir === undefined ? native.pinnedLinks(dir) : native.pinnedLinks(dir, objectsDir);
}

/**
 * A number that changes whenever an entry of one of `dirs` is created,
 * removed or renamed, or one of them itself is (inotify); -1 when one cannot
 * be watched (missing). Synchronous: one read(2) of the events queued since.
 */
export function dirsGeneration(dirs: readonly string[]): number {
  return native.dirsGeneration(dirs);
}

/** The kernel's view of link `id`. Errors: ENOENT gone. */
export function linkInfo(id: number): Promise<LinkInfo> {
  return native.linkInfo(id);
}

/** Every link id the kernel holds now, ascending. Errors: EPERM without CAP_SYS_ADMIN. */
export function linkIds(): Promise<number[]> {
  return native.linkIds();
}

/** The kernel's view of program `id`. Errors: ENOENT gone. */
export function progInfo(id: number): Promise<ProgInfo> {
  return (native.progInfo(id) as Promise<Omit<ProgInfo, 'tag'> & { tag: Buffer }>).then((p) => ({ ...p, tag: p.tag.toString('hex') }));
}

// Will this kernel load a BPF LSM program? Never rejects for a kernel's
// refusal: `ok` false with the errno, a reason and a fix.
export { probe } from './probe.js';


/** What attachObserver made: its link, pinned at the given path. */
export interface ObserverLink {
  progId: number;
  linkId: number;
}

/**
 * Load krsifs's observer object (bpf/krsi_observer.o) with its fexit program
 * aimed at bpf_lsm_<hook>, attach it and pin the link at `pinPath`, and the
 * program itself at `programPin` (attachPinnedTrace links it again): an
 * object like any other, its one program given its target.
 * Errors: EOPNOTSUPP (details.returnsVoid) the hook returns void (no
 * verdict), E2BIG the hook is full, EINVAL a bad global; the kernel's errno
 * for a refused load or pin.
 */
export async function attachObserver(
  data: Buffer,
  hook: string,
  opts: { globals: Record<string, string | number>; reuseMaps: Record<string, string>; pinPath: string; programPin: string },
): Promise<ObserverLink> {
  const object = await openObject(data, 'krsi_observer.o');
  try {
    const [p, ...more] = object.facts.programs;
    if (!p || more.length > 0) throw new KrsiError('EINVAL', 'observer: the object must hold exactly one program');
    const [l] = await object.loadAndAttach(hook, {
      globals: opts.globals,
      reuseMaps: opts.reuseMaps,
      pinPaths: { [p.name]: opts.pinPath },
      programPins: { [p.name]: opts.programPin },
      targets: { [p.name]: `bpf_lsm_${hook}` },
    });
    return { progId: l!.progId, linkId: l!.linkId };
  } catch (e) {
    const err = KrsiError.from(e);
    throw new KrsiError(err.errno, `observer: ${err.message}`, { verifierLog: err.verifierLog, details: err.details });
  } finally {
    object.close();
  }
}

/**
 * Link the fexit program pinned at `programPin` (attachObserver kept it) to
 * the function it was loaded for again, the link pinned at `pinPath`: no load.
 * Errors: ENOENT no such pin, E2BIG the hook is full, the pin's errno.
 */
export function attachPinnedTrace(programPin: string, pinPath: string): Promise<ObserverLink> {
  return native.attachPinnedTrace(programPin, pinPath);
}

const U64_MAX = (1n << 64n) - 1n;

function checkKey(key: bigint): void {
  if (typeof key !== 'bigint' || key < 0n || key > U64_MAX) throw new TypeError('map key must be a 64-bit unsigned bigint');
}

/** The value of `key` in the map pinned at `path`; null when it has none. Synchronous. */
export function mapLookup(path: string, key: bigint): Buffer | null {
  checkKey(key);
  return native.mapLookup(path, key);
}

/** Delete `key` from the map pinned at `path`; false when it was not there. Synchronous. */
export function mapDelete(path: string, key: bigint): boolean {
  checkKey(key);
  return native.mapDelete(path, key);
}
