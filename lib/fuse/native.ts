// The FUSE half of the addon (addon/fuse_*.cc), typed exactly. Only
// lib/fuse/ uses it; everyone else goes through mount().
import { native } from '../addon.js';

/** The process whose system call caused a request (fuse_req_ctx). pid 0: the kernel itself. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
}

/** What lookup/getattr/setattr answer with. mode includes the S_IFMT type bits. */
export interface NativeAttr {
  ino: number;
  mode: number;
  nlink?: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** They never change while mounted: the kernel keeps them (no GETATTR at every permission check). */
  fixed?: boolean;
}

export interface NativeDirent {
  name: string;
  ino: number;
  /** Only the S_IFMT bits are used; 0 is "unknown". */
  mode?: number;
}

interface Base {
  caller: Caller;
}

/** Requests whose caller may be interrupted: set onInterrupt to hear of FUSE_INTERRUPT (the caller got a signal) while the request is pending. */
interface Interruptible {
  onInterrupt?: () => void;
}

/**
 * A poll handle: the kernel's pollers of one open file sleep until notify()
 * (fuse_lowlevel_notify_poll). notify() works once, then frees the handle;
 * drop() frees it unused. Both are no-ops after either or once the session
 * ended; an object JS lets go of is freed when collected.
 */
export interface NativeWaker {
  notify(): boolean;
  drop(): void;
}

/** Each request, by op, with what its reply takes on success. */
export interface NativeRequests {
  lookup: [Base & { parent: number; name: string }, { ino: number; attr: NativeAttr }];
  getattr: [Base & { ino: number; fh?: number }, NativeAttr];
  /** size is present only when the size changes; time changes come without it. */
  setattr: [Base & Interruptible & { ino: number; fh?: number; size?: number }, NativeAttr];
  opendir: [Base & { ino: number; flags: number }, number];
  /** Reply with every entry; the addon serves the kernel's offset (an index) from it. */
  readdir: [Base & { ino: number; fh: number; offset: number; size: number }, NativeDirent[]];
  releasedir: [Base & { ino: number; fh: number }, undefined];
  /**
   * The reply is the fh (direct_io), { fh, cache: true } (page cache: static
   * content, exact size), or { fh, snapshot } (direct_io; the text as of this
   * open: the addon answers the read at offset 0 that follows and every read
   * past offset 0 from it; a later read at offset 0 comes here, and its
   * answer, the whole text, replaces it).
   */
  open: [Base & { ino: number; flags: number }, number | { fh: number; cache: true } | { fh: number; snapshot: Buffer }];
  /** The reply is cut to size (the addon keeps all of it for an open with a snapshot). */
  read: [Base & Interruptible & { ino: number; fh: number; size: number; offset: number }, Buffer | Uint8Array | string];
  /** data is a copy; the reply is the count accepted (0..data.length). */
  write: [Base & Interruptible & { ino: number; fh: number; data: Buffer; offset: number }, number];
  /** Its answer is what close(2) returns. */
  flush: [Base & Interruptible & { ino: number; fh: number }, undefined];
  release: [Base & { ino: number; fh: number; flags: number }, undefined];
  /**
   * poll(2), select(2), epoll(7): events is what the poller asked for (POLLIN...);
   * waker is there when a poller will sleep until told. The reply is the
   * events ready now. Never answer ENOSYS: the kernel would stop asking for
   * the whole mount.
   */
  poll: [Base & { ino: number; fh: number; events: number; waker?: NativeWaker }, number];
}

export type Op = keyof NativeRequests;

/**
 * Answer a request: reply(0, data) or reply(errno). Exactly once; a later
 * call, or one after the session ended (it answered EIO itself), is dropped
 * and returns false. Throws TypeError (after answering EIO) on malformed data.
 */
export type Reply<O extends Op> = (errnoOrZero: number, data?: NativeRequests[O][1]) => boolean;

export type Dispatch = <O extends Op>(op: O, req: NativeRequests[O][0], reply: Reply<O>) => void;

export interface NativeSession {
  readonly mountpoint: string;
  /** Idempotent: stops serving, answers pending requests EIO, detaches the mount lazily. */
  unmount(): void;
  isMounted(): boolean;
  /** The attributes of inode `ino`, given as fixed, changed: the addon and the kernel forget them. */
  invalidate(ino: number): void;
}

interface FuseBinding {
  /**
   * Mount and serve from the Node loop. Throws KrsiError: ENOENT, ENOTDIR,
   * EACCES (mount point), ENOTCONN (stale mount there), EINVAL (options),
   * or mount(2)'s errno. onUnmounted(lost) runs once if the kernel side goes
   * away by itself (umount -l, connection abort); not after unmount().
   */
  fuseMount(
    mountpoint: string,
    options: string[],
    dispatch: Dispatch,
    onUnmounted?: (lost: boolean) => void,
  ): NativeSession;
  /** Throws KrsiError with umount2's errno. */
  detachStaleMount(mountpoint: string): { wasStale: boolean };
}

export const fuse: FuseBinding = native as FuseBinding;
