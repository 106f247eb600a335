// The filesystem layer: paths, bytes, offsets and errno. It turns reads and
// writes into calls on the core, and the core's answers into text and errno.
// No BPF knowledge here.
import { constants } from 'node:fs';
import { KrsiError } from '../errors.js';
import { CAP_MAC_ADMIN, credentialsOf, holds } from '../kernel/proc.js';
import type { Credentials } from '../core/kernel-port.js';
import type { Krsi } from '../core/krsi.js';
import { LineBuffer } from '../core/line-buffer.js';
import { SerialQueue } from '../core/serial-queue.js';
import { MAX_LINE } from '../core/grammar.js';
import type { EventHub, EventStream } from '../core/events.js';
import { fileTable, type FileEntry } from './files.js';
import type { Caller, OpenReply } from '../fuse/index.js';
import { abortWhenKilled } from './signals.js';
import type { FsHandlers, Stat } from '../fuse/index.js';
import { POLL, POLL_ALWAYS } from '../fuse/requests.js';


interface Handle {
  file: FileEntry;
  writable: boolean;
  lines: LineBuffer | null;
  /** The process (tgid) whose bytes the unfinished line holds: only it can finish or run it. */
  partialBy: number | null;
  /** The text served to reads of this open file (for writing, or for the page cache), taken at offset 0. */
  snapshot: Buffer | null;
  /** events: this reader's queue. */
  stream?: EventStream;
  /** Opened with O_NONBLOCK: an events read with nothing queued is EAGAIN, not a wait. */
  nonblock: boolean;
}

export interface HandlerOptions {
  /** Who is behind a request (tests of this layer pass a double); defaults to /proc. */
  credentials?: (pid: number) => Promise<Credentials>;
  /** Where `events` reads come from; without it `events` reads as empty. */
  events?: EventHub;
}

export class KrsiFsHandlers implements FsHandlers {
  private readonly files: Map<string, FileEntry>;
  private readonly handles = new Map<number, Handle>();
  /** Writes and closes of one open file run one after another. */
  private readonly perHandle = new SerialQueue<number>();
  private nextFh = 1;
  private readonly mountedAt = Date.now();
  private readonly credentials: (pid: number) => Promise<Credentials>;
  private readonly events: EventHub | undefined;

  constructor(private readonly core: Krsi, opts: HandlerOptions = {}) {
    this.files = fileTable(core, this.mountedAt);
    this.events = opts.events;
    this.credentials = opts.credentials ?? credentialsOf;
  }

  /** The names at the mount's root. */
  get fileNames(): string[] {
    return [...this.files.keys()];
  }

  getattr(p: string): Stat {
    if (p === '/') {
      const t = this.mountedAt;
      return { mode: constants.S_IFDIR | 0o755, size: 0, uid: 0, gid: 0, mtimeMs: t, atimeMs: t, ctimeMs: t, nlink: 2, fixed: true };
    }
    const f = this.file(p);
    const t = f.mtime();
    return { mode: constants.S_IFREG | f.mode, size: f.size(), uid: 0, gid: 0, mtimeMs: t, atimeMs: t, ctimeMs: t, nlink: 1, fixed: f.fixed };
  }

  /** A behaviour's mtime changes when krsifs attaches or detaches through it. */
  watch(changed: (path: string) => void): void {
    this.core.registry.onTouch((behaviour) => changed(`/${behaviour}`));
  }

  readdir(p: string): string[] {
    if (p !== '/') throw new KrsiError('ENOTDIR', `${p}: not a directory`);
    return this.fileNames;
  }

  async open(p: string, flags: number, caller: Caller): Promise<OpenReply> {
    const f = this.file(p);
    const acc = flags & 3; // O_ACCMODE
    const writable = acc === constants.O_WRONLY || acc === constants.O_RDWR;
    if (writable) {
      if (!f.write) throw new KrsiError('EACCES', `${f.name}: read-only file`);
      await this.authorize(f, caller);
    }
    // A reader's text is taken now (a behaviour's listing is asked of the
    // kernel): the FUSE layer serves the read that follows from it, and the
    // end of file, without a round trip each.
    const snapshot = !writable && f.text && !f.stream && !f.cache ? Buffer.from(await f.text()) : null;
    const fh = this.nextFh++;
    // nothing to keep: its reads are the FUSE layer's or start from the path, and it gets no release
    if (snapshot) return { fh, snapshot };
    this.handles.set(fh, {
      file: f,
      writable,
      lines: writable && f.write === 'lines' ? new LineBuffer() : null,
      partialBy: null,
      snapshot,
      stream: f.stream ? this.events?.open() : undefined,
      nonblock: (flags & constants.O_NONBLOCK) !== 0,
    });
    return f.cache ? { fh, cache: true } : fh;
  }

  /**
   * A snapshot, served by offset: taken at open for a reader, again at every
   * read at offset 0 after the first (a behaviour's listing is asked of the
   * kernel then); at offset 0 the whole text (the FUSE layer keeps it for the
   * reads after).
   */
  async read(p: string, fh: number, size: number, offset: number, caller?: Caller, signal?: AbortSignal): Promise<Buffer> {
    const h = this.handles.get(fh);
    // an open with a snapshot (no handle): a read at offset 0 after the first, the whole text again
    if (!h) return Buffer.from((await this.file(p).text?.()) ?? '');
    // events: a stream; the read waits for records, and ends with EINTR only
    // when the reader is being killed (lib/fs/signals.ts)
    if (h.file.stream) {
      if (!h.stream) return Buffer.alloc(0);
      if (h.nonblock && !h.stream.ready) throw new KrsiError('EAGAIN', 'events: no record queued (O_NONBLOCK)');
      return h.stream.read(size, caller ? abortWhenKilled(caller.pid, signal) : signal);
    }
    if (offset === 0 || h.snapshot === null) h.snapshot = Buffer.from((await h.file.text?.()) ?? '');
    return offset === 0 ? h.snapshot : h.snapshot.subarray(offset, offset + size);
  }

  /**
   * poll(2), select(2), epoll(7): events is readable when a read would answer
   * at once (a record or a loss to report, or the end), and wakes its pollers
   * when it becomes so, as trace_pipe does; other files are always ready.
   */
  poll(_p: string, fh: number, _caller: Caller, wake: () => void): number {
    const h = this.handles.get(fh);
    if (!h?.file.stream) return POLL_ALWAYS; // a snapshot's open has no handle
    if (!h.stream || h.stream.ready) return POLL.IN | POLL.RDNORM;
    h.stream.onReady(wake);
    return 0;
  }

  /**
   * Lines are executed as their newline arrives, one after another; the
   * write that completes a line returns when the kernel has answered. The
   * first failing line fails the write with its errno; the lines after it in
   * the same write, and its unfinished tail, are dropped. Offsets are
   * ignored: a behaviour file is a command stream, like a pipe.
   *
   * A line runs with the credentials and cwd of the one process that wrote
   * it: a line is never made of two processes' bytes (the second gets EBUSY),
   * and an unfinished line runs only at a close by its writer (see flush).
   */
  async write(p: string, fh: number, data: Buffer, _offset: number, caller: Caller, signal?: AbortSignal): Promise<number> {
    const h = this.handle(fh);
    return this.perHandle.run(fh, async () => {
      if (!h.writable) throw new KrsiError('EBADF', `${h.file.name}: not open for writing`);
      const writer = await this.authorize(h.file, caller);
      if (h.file.write === 'clear') {
        const err = new KrsiError('EINVAL', 'error_log: write nothing to clear it (: > error_log)');
        this.core.fail('error_log', data.toString('utf8').trimEnd(), err);
        throw err;
      }
      const lines = h.lines!;
      if (lines.partial && h.partialBy !== writer.tgid) {
        const err = new KrsiError(
          'EBUSY',
          `process ${writer.tgid} (${writer.comm}) wrote to an open file on which process ${h.partialBy} has an ` +
            `unfinished line; a line runs as the one process that wrote it: finish that line or open the file yourself`,
        );
        this.core.fail(h.file.name, lossyStart(data), err);
        throw err;
      }
      const killed = abortWhenKilled(caller.pid, signal);
      try {
        for (const item of lines.push(data)) {
          if ('tooLong' in item) {
            throw this.core.fail(
              h.file.name,
              lossyStart(data),
              new KrsiError('E2BIG', `parse line: longer than ${MAX_LINE} bytes; nothing was run`),
            );
          }
          await this.core.execute(h.file.name, item.line, writer, killed);
        }
      } catch (e) {
        lines.reset();
        h.partialBy = null;
        throw e;
      }
      h.partialBy = lines.partial ? writer.tgid : null;
      return data.length;
    });
  }

  /**
   * close(2). Every close of a shared open file comes here, from the process
   * that closes (a child that inherited the fd and exits, a dup's close). An
   * unfinished last line runs only when its own writer closes, with the
   * writer's rights checked again, and that close returns its answer; a close
   * by any other process leaves it waiting for the writer's. If the writer
   * never closes before the file's last close, the line is dropped and
   * error_log says so (release).
   */
  async flush(p: string, fh: number, caller: Caller, signal?: AbortSignal): Promise<void> {
    const h = this.handles.get(fh);
    if (!h?.lines) return;
    return this.perHandle.run(fh, async () => {
      if (!h.lines!.partial) return;
      const closer = await this.credentials(caller.pid).catch(() => null);
      if (closer?.tgid !== h.partialBy) return;
      const writer = await this.authorize(h.file, caller);
      const line = h.lines!.flush();
      h.partialBy = null;
      if (line) await this.core.execute(h.file.name, line, writer, abortWhenKilled(caller.pid, signal));
    });
  }

  release(_p: string, fh: number): void {
    const h = this.handles.get(fh);
    if (h?.lines?.partial && h.partialBy !== null) {
      this.core.fail(
        h.file.name,
        h.lines.flush()?.toString('utf8') ?? '',
        new KrsiError(
          'ECANCELED',
          `an unfinished line of process ${h.partialBy} was dropped: the file was closed for the last time by ` +
            `another process, never by its writer; end lines with a newline`,
        ),
      );
    }
    h?.stream?.close();
    this.handles.delete(fh);
  }

  /** O_TRUNC (`>`) detaches nothing; on error_log it clears the log. */
  async truncate(p: string, size: number, caller: Caller): Promise<void> {
    const f = this.file(p);
    if (!f.write) throw new KrsiError('EACCES', `${f.name}: read-only file`);
    await this.authorize(f, caller);
    if (size === 0) f.clear?.();
  }

  /**
   * Every write, truncation and line run is checked here, each time: the
   * writer must hold CAP_MAC_ADMIN in the daemon's user namespace. Holding the
   * file open proves nothing (it may have been inherited or passed on).
   */
  private async authorize(f: FileEntry, caller: Caller): Promise<Credentials> {
    let creds: Credentials | undefined;
    let why: string;
    try {
      creds = await this.credentials(caller.pid);
      if (holds(creds, CAP_MAC_ADMIN)) return creds;
      why = creds.inDaemonUserNs
        ? 'lacks CAP_MAC_ADMIN'
        : "is in a user namespace of its own, where its capabilities count for nothing here";
    } catch (e) {
      why = `cannot be identified (${KrsiError.from(e).message})`;
    }
    const who = creds ? `process ${creds.tgid} (${creds.comm}, uid ${creds.uid})` : `process ${caller.pid}`;
    const err = new KrsiError(
      'EPERM',
      `write ${f.name}: ${who} ${why}; writers need CAP_MAC_ADMIN in the initial user namespace (root on the host)`,
      { details: { pid: caller.pid, uid: caller.uid } },
    );
    this.core.fail(f.name, '', err);
    throw err;
  }

  private file(p: string): FileEntry {
    const f = this.files.get(p.replace(/^\//, ''));
    if (!f) throw new KrsiError('ENOENT', `${p}: no such file`);
    return f;
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new KrsiError('EBADF', `unknown file handle ${fh}`);
    return h;
  }
}

/** The start of a write, for error_log when no whole line can be shown. */
function lossyStart(data: Buffer): string {
  return data.subarray(0, 64).toString('utf8') + (data.length > 64 ? '…' : '');
}
