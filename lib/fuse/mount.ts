// mount(): serve FsHandlers (paths, promises, errno) on a FUSE mount. Turns
// the kernel's inode requests into path calls, and every outcome of a handler
// (value, KrsiError, any other exception) into exactly one reply.
import path from 'node:path';
import { constants } from 'node:os';
import { KrsiError } from '../errors.js';
import { Inodes, ROOT_INO } from './inodes.js';
import { fuse, type Caller, type Dispatch, type NativeAttr, type NativeDirent, type NativeRequests, type NativeSession, type NativeWaker, type Op } from './native.js';
import { POLL_ALWAYS, RequestSignals } from './requests.js';

/** What getattr returns. mode includes the type bits (S_IFREG, S_IFDIR). */
export interface Stat {
  mode: number;
  size: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  atimeMs: number;
  ctimeMs: number;
  /** Defaults to 2 for a directory, 1 otherwise. */
  nlink?: number;
  /**
   * These attributes change only when the handlers say so (the `changed`
   * that `watch` hands them): until then the FUSE layer answers GETATTR
   * itself, and the kernel keeps them instead of asking again at every
   * permission check and stat (the root's for a second only: a stat of a
   * dead mount must say ENOTCONN soon; detachStaleMount asks statfs(2),
   * which says so at once).
   */
  fixed?: boolean;
}

/**
 * The filesystem, by path ('/', '/process_execution', '/dir/file'). To fail,
 * throw (or reject with) a KrsiError: its errno is the answer. Node system
 * errors (with a code such as 'ENOENT') work too; anything else is EIO and
 * goes to onError.
 */
export type OpenReply = number | { fh: number; cache: true } | { fh: number; snapshot: Buffer };

export interface FsHandlers {
  /** Also answers lookups: throw ENOENT for a name that does not exist. */
  getattr(path: string): Promise<Stat> | Stat;
  /** Names in a directory, without '.' and '..'. Read once per opendir. */
  readdir(path: string): Promise<string[]> | string[];
  /**
   * Returns the fh the other calls get. The file is opened with direct_io,
   * unless the answer is `{ fh, cache: true }`: a file whose content never
   * changes while mounted and whose getattr size is exact, read through the
   * page cache (no round trip once cached); or `{ fh, snapshot }`: the
   * file's text as of this open, from which the read at offset 0 that follows
   * and every read past offset 0 are served without calling read(); a later
   * read at offset 0 calls read(), which must then answer with the whole text
   * (it replaces the snapshot). A snapshot's open gets no release() (the
   * FUSE layer answers its last close itself): keep nothing for it.
   */
  open(path: string, flags: number, caller: Caller): Promise<OpenReply> | OpenReply;
  /**
   * Up to size bytes at offset; fewer (or none) means end of file. A read may
   * wait (a stream).
   *
   * `signal`, here and on write, truncate and flush, aborts when the caller
   * is interrupted by a signal while the request waits (FUSE_INTERRUPT; it
   * comes once per request, and also when it came before the handler looked:
   * the signal is then already aborted). Most signals are harmless and the
   * request may go on; but a caller being killed waits, uninterruptibly, for
   * the answer, so a request that may wait long should then end (EINTR) once
   * the caller is being killed (lib/fs/signals.ts abortWhenKilled tells). An
   * answer after the interrupt is taken as the answer.
   */
  read(path: string, fh: number, size: number, offset: number, caller: Caller, signal?: AbortSignal): Promise<Buffer> | Buffer;
  /** Returns the count accepted; the write(2) returns when this settles. */
  write(path: string, fh: number, data: Buffer, offset: number, caller: Caller, signal?: AbortSignal): Promise<number> | number;
  /**
   * truncate(2); ftruncate(2) (with its fh); an O_TRUNC open (after open(),
   * whose flags then lack O_TRUNC, and without the fh: the kernel sends none).
   */
  truncate(path: string, size: number, caller: Caller, fh?: number, signal?: AbortSignal): Promise<void> | void;
  /** On each close(2) of a descriptor; its error is what close(2) returns. */
  flush(path: string, fh: number, caller: Caller, signal?: AbortSignal): Promise<void> | void;
  /** When the last descriptor of an open is gone; its error reaches no one. */
  release(path: string, fh: number): Promise<void> | void;
  /**
   * poll(2), select(2), epoll(7) on an open file: the POLL bits ready now.
   * When none of those the poller wants are, call `wake` once they may be
   * (a stream got data): the kernel then asks again. A later poll of the same
   * open file hands a new `wake`; an old one still works, and `wake` after the
   * file is closed, or when nobody waits, does nothing. Without this handler
   * every file is always ready (POLL_ALWAYS).
   */
  poll?(path: string, fh: number, caller: Caller, wake: () => void): Promise<number> | number;
  /**
   * Called once, when mounted: `changed(path)` says that the attributes of
   * a file getattr gave as `fixed` are not what they were (call it before
   * the request that changed them is answered).
   */
  watch?(changed: (path: string) => void): void;
}

export interface MountOptions {
  /** libfuse -o options. Default: allow_other, default_permissions, fsname=krsifs, subtype=krsifs. */
  options?: string[];
  /** The mount went away without unmount() (umount -l, connection aborted). */
  onUnmounted?: () => void;
  /** A handler threw something that is not an errno error (answered EIO). Default: process.emitWarning. */
  onError?: (error: unknown, op: string, path: string | undefined) => void;
}

export const DEFAULT_OPTIONS = ['allow_other', 'default_permissions', 'fsname=krsifs', 'subtype=krsifs'];

// Mounts still up when the process exits are unmounted on the way out, so a
// crash (uncaught exception, process.exit) leaves no dead mount behind.
const live = new Set<NativeSession>();
let exitHook = false;
function track(s: NativeSession): void {
  live.add(s);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const m of live) m.unmount();
      live.clear();
    });
  }
}

/** A mounted filesystem. */
export class Mount {
  constructor(
    readonly mountpoint: string,
    private readonly session: NativeSession,
  ) {}

  get mounted(): boolean {
    return this.session.isMounted();
  }

  /**
   * Stop serving and detach the mount (lazily: busy clients do not make it
   * fail; they get ENOTCONN). Requests still pending are answered EIO.
   * Calling it twice is safe.
   */
  async unmount(): Promise<void> {
    this.session.unmount();
    live.delete(this.session);
  }
}

/**
 * Mount handlers at mountpoint (a directory). Throws KrsiError: ENOENT,
 * ENOTDIR, EACCES (mountpoint), ENOTCONN (a dead FUSE mount is there: see
 * detachStaleMount), EINVAL (options libfuse rejects), or mount(2)'s errno.
 *
 * Never do blocking I/O on the mount from the process that serves it: the
 * kernel would wait for the very loop that is blocked.
 */
export async function mount(mountpoint: string, handlers: FsHandlers, opts: MountOptions = {}): Promise<Mount> {
  const where = path.resolve(mountpoint);
  const onError =
    opts.onError ??
    ((e: unknown, op: string, p: string | undefined) =>
      process.emitWarning(`krsifs: ${op} ${p ?? '?'}: unexpected error answered EIO: ${(e as Error)?.stack ?? String(e)}`));
  const fs = new FsAdapter(handlers);
  // The kernel is answered first; onError only hears about it, and may not throw.
  const report = (e: unknown, op: string, req: object) => {
    try {
      onError(e, op, fs.pathOf(req));
    } catch {
      // nothing left to tell
    }
  };
  const dispatch: Dispatch = (op, req, reply) => {
    fs.serve(op, req)
      .then(
        (data) => reply(0, data as never),
        (e: unknown) => {
          const errno = errnoOf(e);
          reply(errno ?? constants.errno.EIO);
          if (errno === undefined) report(e, op, req);
        },
      )
      .catch((e: unknown) => report(e, op, req)); // a malformed answer: the reply sent EIO and threw
  };
  const session = fuse.fuseMount(where, opts.options ?? DEFAULT_OPTIONS, dispatch, () => {
    live.delete(session);
    opts.onUnmounted?.();
  });
  track(session);
  handlers.watch?.((p) => {
    const ino = fs.knownIno(p);
    if (ino !== undefined) session.invalidate(ino);
  });
  return new Mount(where, session);
}

/**
 * If mountpoint is a FUSE mount whose daemon died (every access fails with
 * ENOTCONN), detach it and return true; otherwise change nothing and return
 * false. Throws KrsiError with umount2's errno. Do not call it on a mount
 * this process serves.
 */
export function detachStaleMount(mountpoint: string): boolean {
  return fuse.detachStaleMount(path.resolve(mountpoint)).wasStale;
}

/** The errno an exception stands for, or undefined for a bug (answered EIO). */
function errnoOf(e: unknown): number | undefined {
  if (e instanceof KrsiError) return e.errno;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && code in constants.errno) return (constants.errno as Record<string, number>)[code];
  return undefined;
}

const S_IFDIR = 0o040000;

/** Ops whose caller can be interrupted while the handler works. */
const INTERRUPTIBLE = new Set<Op>(['read', 'write', 'flush', 'setattr']);

/** Inode requests in, path calls out. */
class FsAdapter {
  private readonly inodes = new Inodes();
  private readonly dirs = new Map<number, NativeDirent[]>();
  private nextDir = 1;
  /** The kernel's latest poll handle of each open file (fh) whose pollers sleep. */
  private readonly wakers = new Map<number, NativeWaker>();

  constructor(private readonly h: FsHandlers) {}

  /** The path a request is about, for messages. */
  pathOf(r: object): string | undefined {
    const req = r as { ino?: number; parent?: number; name?: string };
    if (req.ino !== undefined) return this.inodes.path(req.ino);
    const parent = req.parent !== undefined ? this.inodes.path(req.parent) : undefined;
    return parent !== undefined && req.name !== undefined ? Inodes.child(parent, req.name) : undefined;
  }

  /** The inode of a path the kernel was given; undefined if it never was. */
  knownIno(p: string): number | undefined {
    return this.inodes.known(p);
  }

  private path(ino: number): string {
    const p = this.inodes.path(ino);
    if (p === undefined) throw new KrsiError('ESTALE', `fuse: unknown inode ${ino}`);
    return p;
  }

  private async attr(p: string): Promise<NativeAttr> {
    const st = await this.h.getattr(p);
    const ino = this.inodes.ino(p);
    return {
      ino,
      mode: st.mode,
      nlink: st.nlink,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      atimeMs: st.atimeMs,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      fixed: st.fixed,
    };
  }

  /**
   * Run the handler of one request; settles with the data of its reply. An
   * interruptible request gets its signals here, before any await: the addon
   * calls onInterrupt only after dispatch returns, at once if the interrupt
   * already came.
   */
  async serve<O extends Op>(op: O, req: NativeRequests[O][0]): Promise<NativeRequests[O][1]> {
    const run = this.ops[op] as ((q: NativeRequests[O][0], signal?: AbortSignal) => Promise<NativeRequests[O][1]>) | undefined;
    if (!run) throw new KrsiError('ENOSYS', `fuse: unsupported op ${op}`);
    if (!INTERRUPTIBLE.has(op)) return run(req);
    const signals = new RequestSignals();
    (req as { onInterrupt?: () => void }).onInterrupt = () => signals.interrupt();
    try {
      return await run(req, signals.interrupted);
    } finally {
      signals.answered();
    }
  }

  /** Wake the pollers of open file fh, once. */
  private wake(fh: number): void {
    const w = this.wakers.get(fh);
    if (!w) return;
    this.wakers.delete(fh);
    w.notify();
  }

  private dropWaker(fh: number): void {
    this.wakers.get(fh)?.drop();
    this.wakers.delete(fh);
  }

  private readonly ops: { [O in Op]: (q: NativeRequests[O][0], signal?: AbortSignal) => Promise<NativeRequests[O][1]> } = {
    lookup: async (q) => {
      const attr = await this.attr(Inodes.child(this.path(q.parent), q.name));
      return { ino: attr.ino, attr };
    },
    getattr: async (q) => this.attr(this.path(q.ino)),
    setattr: async (q, signal) => {
      const p = this.path(q.ino);
      if (q.size !== undefined) await this.h.truncate(p, q.size, q.caller, q.fh, signal);
      return this.attr(p);
    },
    // The listing is taken once per opendir, so the kernel's offsets (indexes
    // into it) stay valid across the readdir calls of one pass.
    opendir: async (q) => {
      const p = this.path(q.ino);
      const names = await this.h.readdir(p);
      const parent = q.ino === ROOT_INO ? ROOT_INO : this.inodes.ino(Inodes.parent(p));
      const entries: NativeDirent[] = [
        { name: '.', ino: q.ino, mode: S_IFDIR },
        { name: '..', ino: parent, mode: S_IFDIR },
        // Type unknown (0): ls and friends stat each name anyway.
        ...names.map((name) => ({ name, ino: this.inodes.ino(Inodes.child(p, name)) })),
      ];
      const fh = this.nextDir++;
      this.dirs.set(fh, entries);
      return fh;
    },
    readdir: async (q) => {
      const entries = this.dirs.get(q.fh);
      if (!entries) throw new KrsiError('EBADF', `fuse: readdir on unknown directory handle ${q.fh}`);
      return entries;
    },
    releasedir: async (q) => {
      this.dirs.delete(q.fh);
      return undefined;
    },
    open: async (q) => this.h.open(this.path(q.ino), q.flags, q.caller),
    read: async (q, signal) => this.h.read(this.path(q.ino), q.fh, q.size, q.offset, q.caller, signal),
    write: async (q, signal) => this.h.write(this.path(q.ino), q.fh, q.data, q.offset, q.caller, signal),
    flush: async (q, signal) => {
      await this.h.flush(this.path(q.ino), q.fh, q.caller, signal);
      return undefined;
    },
    release: async (q) => {
      this.dropWaker(q.fh);
      await this.h.release(this.path(q.ino), q.fh);
      return undefined;
    },
    // The kernel keeps one poll handle per open file (all its pollers wait
    // on it), so one waker per fh: a newer handle replaces (and frees) the
    // older; `wake` notifies whichever is current.
    poll: async (q) => {
      if (q.waker) {
        this.dropWaker(q.fh);
        this.wakers.set(q.fh, q.waker);
      }
      const p = this.path(q.ino);
      if (!this.h.poll) {
        this.dropWaker(q.fh);
        return POLL_ALWAYS;
      }
      let revents: number;
      try {
        revents = await this.h.poll(p, q.fh, q.caller, () => this.wake(q.fh));
      } catch (e) {
        // ENOSYS would turn poll off for the whole mount: "not supported" is "always ready"
        if (errnoOf(e) === constants.errno.ENOSYS) return POLL_ALWAYS;
        throw e;
      }
      // ready for the poller, or always ready (nothing will ever wake it): the waker is not needed
      if (((revents & (q.events || ~0)) !== 0 || revents === POLL_ALWAYS) && this.wakers.get(q.fh) === q.waker) this.dropWaker(q.fh);
      return revents;
    },
  };
}
