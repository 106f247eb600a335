// The kernel layer, typed: a thin layer over the addon's libbpf exports
// (addon/bpf_*.cc). Every function returns a Promise: the work runs on a
// libuv thread, never on the event loop. Failures are KrsiError (errno, code,
// message, verifierLog for loads, details).
import { native } from './native.js';
import type {
  AttachedProgram,
  Link,
  LinkInfo,
  LoadOptions,
  PinnedLinkInfo,
  ObjectInfo,
  ProbeResult,
  ProgInfo,
  ReadResult,
} from './types.js';

export type * from './types.js';
import type { Credentials } from '../core/kernel-port.js';

/**
 * Read the BPF object at `path` as the writer resolves it: absolute paths
 * inside its root, relative ones from its cwd. The file is read once: inspect
 * and load the returned bytes.
 * Errors: ENOENT missing, EISDIR directory, ENOEXEC not a regular file,
 * E2BIG over 64 MiB, ESRCH no such process, EACCES/EPERM as the kernel says.
 */
export function readObject(writer: Credentials, path: string, _signal?: AbortSignal): Promise<ReadResult> {
  return native.readObject(writer.pid, path);
}

/**
 * What an object holds, without loading it.
 * Errors: ENOEXEC not ELF / not a BPF object / malformed; libbpf's errno otherwise.
 */
export function inspect(data: Buffer, name?: string): Promise<ObjectInfo> {
  return name === undefined ? native.inspect(data) : native.inspect(data, name);
}

let hooksCache: Promise<string[]> | undefined;
let hookSet: Promise<Set<string>> | undefined;

/**
 * Every LSM hook the running kernel offers (bpf_lsm_* in its BTF), sorted;
 * cached. With `btfPath`, the hooks of that BTF file (not cached).
 */
export function kernelHooks(btfPath?: string): Promise<string[]> {
  if (btfPath !== undefined) return native.kernelHooks(btfPath);
  if (!hooksCache) {
    hooksCache = native.kernelHooks() as Promise<string[]>;
    hooksCache.catch(() => {
      hooksCache = undefined; // try again next time
      hookSet = undefined;
    });
  }
  return hooksCache.then((h) => [...h]);
}

/** Does the running kernel offer LSM hook `name`? */
export async function hasHook(name: string): Promise<boolean> {
  if (!hookSet) hookSet = kernelHooks().then((h) => new Set(h));
  return (await hookSet).has(name);
}

/**
 * Load every program of the object and attach it to `hook`, all or nothing.
 * SEC("lsm")/SEC("lsm.s") programs take `hook`; SEC("lsm/H") ones must name it.
 * Errors: EINVAL no program, a non-LSM program, a program for another hook, a
 * hook the kernel lacks, a bad global (unknown, wrong type, out of range, too
 * long); the kernel's errno for a refused load (verifierLog holds the log;
 * EPERM where BPF LSM is not permitted) or attach (E2BIG: too many on the hook).
 */
export function loadAndAttach(data: Buffer, hook: string, opts: LoadOptions = {}): Promise<AttachedProgram[]> {
  return native.loadAndAttach(data, hook, opts);
}

/** A Link for a link pinned in bpffs. Errors: ENOENT no pin, EINVAL not a link. */
export function openPinnedLink(path: string): Promise<Link> {
  return native.openPinnedLink(path);
}

/**
 * Every link pinned in bpffs directory `dir`, sorted by link id, with its
 * program's kernel name, the hook it runs on and (when `objectsDir` holds a
 * symlink named by its link id) the object it came from: one worker for the
 * whole directory. A missing directory is empty; pins that vanish meanwhile
 * or are no links are left out.
 */
export function pinnedLinks(dir: string, objectsDir?: string): Promise<PinnedLinkInfo[]> {
  return objectsDir === undefined ? native.pinnedLinks(dir) : native.pinnedLinks(dir, objectsDir);
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
  return native.progInfo(id);
}

/**
 * Will this kernel load a BPF LSM program? Never rejects for a kernel's
 * refusal: `ok` false with the errno, a reason and a fix.
 */
export function probe(): Promise<ProbeResult> {
  return native.probe();
}

/** The Link class itself, for instanceof; links come only from loadAndAttach/openPinnedLink. */
export const LinkClass: abstract new (...args: never[]) => Link = native.Link;
