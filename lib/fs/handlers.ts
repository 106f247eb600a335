// The filesystem layer: paths, bytes, offsets and errno. It turns reads and
// writes into calls on the core, and the core's answers into text and errno.
// No BPF knowledge here.
import { constants } from 'node:fs';
import { KrsiError } from '../errors.js';
import { CAP_MAC_ADMIN, commOf, hasCapability } from '../core/capabilities.js';
import type { Caller } from '../core/kernel-port.js';
import type { Krsi } from '../core/krsi.js';
import { LineBuffer } from '../core/line-buffer.js';
import { MAX_LINE } from '../core/grammar.js';
import type { EventHub, EventStream } from '../core/events.js';
import { fileTable, type FileEntry } from './files.js';
import { abortWhenKilled } from './signals.js';
import type { FsHandlers, Stat } from '../fuse/index.js';

/**
 * The size of a file whose length is not known without asking the kernel
 * (a behaviour's listing) or that has none (events): more than a listing of
 * 38 programs holds, so a reader that trusts st_size (Node's readFile) gets
 * all of it, and above 0 (see size()).
 */
export const NOMINAL_SIZE = 65536;

interface Handle {
  file: FileEntry;
  writable: boolean;
  lines: LineBuffer | null;
  /** The text served to reads of this open file, taken at offset 0. */
  snapshot: Buffer | null;
  /** events: this reader's queue. */
  stream?: EventStream;
  /** Opened with O_NONBLOCK: an events read with nothing queued is EAGAIN, not a wait. */
  nonblock: boolean;
}

export interface HandlerOptions {
  /** Decides whether a writer may write; defaults to CAP_MAC_ADMIN in /proc/PID/status. */
  mayWrite?: (caller: Caller) => Promise<boolean>;
  /** Where `events` reads come from; without it `events` reads as empty. */
  events?: EventHub;
}

export class KrsiFsHandlers implements FsHandlers {
  private readonly files: Map<string, FileEntry>;
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private readonly mountedAt = Date.now();
  private readonly mayWrite: (caller: Caller) => Promise<boolean>;
  private readonly events: EventHub | undefined;

  constructor(private readonly core: Krsi, opts: HandlerOptions = {}) {
    this.files = fileTable(core.behaviours());
    this.events = opts.events;
    this.mayWrite = opts.mayWrite ?? ((c) => hasCapability(c.pid, CAP_MAC_ADMIN));
  }

  /** The names at the mount's root. */
  get fileNames(): string[] {
    return [...this.files.keys()];
  }

  getattr(p: string): Stat {
    if (p === '/') {
      const t = this.mountedAt;
      return { mode: constants.S_IFDIR | 0o755, size: 0, uid: 0, gid: 0, mtimeMs: t, atimeMs: t, ctimeMs: t, nlink: 2 };
    }
    const f = this.file(p);
    const t = this.mtime(f);
    return { mode: constants.S_IFREG | f.mode, size: this.size(f), uid: 0, gid: 0, mtimeMs: t, atimeMs: t, ctimeMs: t, nlink: 1 };
  }

  /**
   * hooks and error_log: what a read from offset 0 returns now, in bytes (in
   * memory, cheap). A behaviour's listing comes from the kernel, on the
   * worker pool, behind any verifier run: stat must not wait for that, so
   * behaviour files and events report NOMINAL_SIZE. Never 0 when there may
   * be something to read: since Linux 6.5, sendfile(2) and splice(2) of a
   * FUSE file end at its size without asking the daemon, and a size of 0 is
   * an empty file to busybox cat and every other splicing reader (the addon
   * refuses the page-cache read that a size above 0 leads to, and they fall
   * back to read(2)).
   */
  private size(f: FileEntry): number {
    if (f.kind === 'hooks') return Buffer.byteLength(this.core.hooksText());
    if (f.kind === 'error_log') return Buffer.byteLength(this.core.errorLog.text());
    return NOMINAL_SIZE;
  }

  readdir(p: string): string[] {
    if (p !== '/') throw new KrsiError('ENOTDIR', `${p}: not a directory`);
    return this.fileNames;
  }

  async open(p: string, flags: number, caller: Caller): Promise<number> {
    const f = this.file(p);
    const acc = flags & 3; // O_ACCMODE
    const writable = acc === constants.O_WRONLY || acc === constants.O_RDWR;
    if (writable) {
      if (f.kind === 'hooks' || f.kind === 'events') throw new KrsiError('EACCES', `${f.name}: read-only file`);
      await this.authorize(f, caller);
    }
    const fh = this.nextFh++;
    this.handles.set(fh, {
      file: f,
      writable,
      lines: writable && f.kind === 'behaviour' ? new LineBuffer() : null,
      snapshot: null,
      stream: f.kind === 'events' ? this.events?.open() : undefined,
      nonblock: (flags & constants.O_NONBLOCK) !== 0,
    });
    return fh;
  }

  /** A snapshot taken at offset 0 (a behaviour's listing is read from the kernel then), served by offset. */
  async read(p: string, fh: number, size: number, offset: number, caller?: Caller, signal?: AbortSignal): Promise<Buffer> {
    const h = this.handle(fh);
    // events: a stream; the read waits for records, and ends with EINTR only
    // when the reader is being killed (lib/fs/signals.ts)
    if (h.file.kind === 'events') {
      if (!h.stream) return Buffer.alloc(0);
      if (h.nonblock && !h.stream.ready) throw new KrsiError('EAGAIN', 'events: no record queued (O_NONBLOCK)');
      return h.stream.read(size, caller ? abortWhenKilled(caller.pid, signal) : signal);
    }
    if (offset === 0 || h.snapshot === null) h.snapshot = Buffer.from(await this.text(h.file));
    return h.snapshot.subarray(offset, offset + size);
  }

  /**
   * Lines are executed as their newline arrives, one after another; the
   * write that completes a line returns when the kernel has answered. The
   * first failing line fails the write with its errno; the lines after it in
   * the same write are not run. Offsets are ignored: a behaviour file is a
   * command stream, like a pipe.
   */
  async write(p: string, fh: number, data: Buffer, _offset: number, caller: Caller): Promise<number> {
    const h = this.handle(fh);
    if (!h.writable) throw new KrsiError('EBADF', `${h.file.name}: not open for writing`);
    if (h.file.kind === 'error_log') {
      const err = new KrsiError('EINVAL', 'error_log: write nothing to clear it (: > error_log)');
      this.core.fail('error_log', data.toString('utf8').trimEnd(), err);
      throw err;
    }
    await this.authorize(h.file, caller);
    for (const item of h.lines!.push(data)) {
      if ('tooLong' in item) {
        const err = new KrsiError('E2BIG', `parse line: longer than ${MAX_LINE} bytes; nothing was run`);
        this.core.fail(h.file.name, data.subarray(0, 64).toString('utf8') + '…', err);
        throw err;
      }
      await this.core.execute(h.file.name, item.line, caller);
    }
    return data.length;
  }

  /** close(2): a last line without a newline runs now, and close returns its answer. */
  async flush(p: string, fh: number, caller: Caller): Promise<void> {
    const h = this.handles.get(fh);
    const line = h?.lines?.flush();
    if (h && line) await this.core.execute(h.file.name, line, caller);
  }

  release(_p: string, fh: number): void {
    this.handles.get(fh)?.stream?.close();
    this.handles.delete(fh);
  }

  /** O_TRUNC (`>`) detaches nothing; on error_log it clears the log. */
  async truncate(p: string, size: number, caller: Caller): Promise<void> {
    const f = this.file(p);
    if (f.kind === 'hooks' || f.kind === 'events') throw new KrsiError('EACCES', `${f.name}: read-only file`);
    await this.authorize(f, caller);
    if (f.kind === 'error_log' && size === 0) this.core.errorLog.clear();
  }

  private async authorize(f: FileEntry, caller: Caller): Promise<void> {
    if (await this.mayWrite(caller)) return;
    const comm = await commOf(caller.pid);
    const err = new KrsiError(
      'EPERM',
      `write ${f.name}: process ${caller.pid} (${comm}, uid ${caller.uid}) lacks CAP_MAC_ADMIN; ` +
        `run the writer as root with CAP_MAC_ADMIN`,
      { details: { pid: caller.pid, uid: caller.uid } },
    );
    this.core.fail(f.name, '', err);
    throw err;
  }

  private async text(f: FileEntry): Promise<string> {
    switch (f.kind) {
      case 'behaviour':
        return this.core.listing(f.name);
      case 'hooks':
        return this.core.hooksText();
      case 'error_log':
        return this.core.errorLog.text();
      case 'events':
        return ''; // read() serves the stream
    }
  }

  private mtime(f: FileEntry): number {
    if (f.kind === 'behaviour') return this.core.registry.changedAt(f.name).getTime();
    if (f.kind === 'error_log') return this.core.errorLog.list().at(-1)?.time.getTime() ?? this.mountedAt;
    return this.mountedAt;
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
