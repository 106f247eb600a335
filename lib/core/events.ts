// The `events` file's data: records from attached programs (bpf/krsi_events.h),
// turned into text lines and fanned out to every open reader, trace_pipe-like.
// Plain TypeScript: no FUSE, no addon.
//
// Line formats (one record per line, fields separated by one space):
//   time=2025-01-31T12:00:00.123456Z behaviour=B program=P pid=N comm=C KEY=VALUE ...
//   time=2025-01-31T12:00:00.123456Z lost=N
// KEY=VALUE pairs are the program's payload, in its order; an `error` that is
// a number is printed as the errno's name (error=EOPNOTSUPP). A value that is
// empty or holds a space, a quote, a backslash or a control byte is printed
// in double quotes with \" \\ \n \t and \xNN escapes. `truncated=1` ends a
// record whose payload did not fit. `lost=N`: N records this reader will
// never see, because its queue was full (it read too slowly) or because the
// kernel ring was full; the line comes where the gap is.
import { quote } from '../text.js';
import { KrsiError, errnoName } from '../errors.js';

/** Byte layout of struct krsi_event (bpf/krsi_events.h). */
export const RECORD = {
  timeNs: 0,
  pid: 8,
  tid: 12,
  payloadLen: 16,
  flags: 18,
  comm: 24,
  program: 40,
  behaviour: 72,
  payload: 104,
  payloadMax: 512,
  size: 616,
} as const;
const TRUNCATED = 1;
/** KRSI_EVENT_OBSERVED: krsifs's observer sent it (lib/core/observer.ts completes it). */
const OBSERVED = 2;

export interface EventRecord {
  /** Wall-clock time in nanoseconds since the epoch. */
  timeNs: bigint;
  pid: number;
  tid: number;
  comm: string;
  program: string;
  behaviour: string;
  fields: [string, string][];
  truncated: boolean;
  /** Sent by the observer: its program is named by the daemon (completeObserved). */
  observed: boolean;
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** Decode one raw record; null when it is too short to be one. */
export function decodeRecord(raw: Buffer, realtimeMinusBoottimeNs: number): EventRecord | null {
  if (raw.length < RECORD.payload) return null;
  const boot = raw.readBigUInt64LE(RECORD.timeNs);
  const len = Math.min(raw.readUInt16LE(RECORD.payloadLen), RECORD.payloadMax, raw.length - RECORD.payload);
  const payload = raw.subarray(RECORD.payload, RECORD.payload + len);
  const parts: string[] = [];
  for (let at = 0; at < payload.length; ) {
    const nul = payload.indexOf(0, at);
    const end = nul < 0 ? payload.length : nul;
    parts.push(payload.toString('utf8', at, end));
    at = end + 1;
  }
  const fields: [string, string][] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) fields.push([parts[i]!, parts[i + 1]!]);
  return {
    timeNs: boot + BigInt(Math.round(realtimeMinusBoottimeNs)),
    pid: raw.readUInt32LE(RECORD.pid),
    tid: raw.readUInt32LE(RECORD.tid),
    comm: cstr(raw, RECORD.comm, 16),
    program: cstr(raw, RECORD.program, 32),
    behaviour: cstr(raw, RECORD.behaviour, 32),
    fields,
    truncated: (raw.readUInt16LE(RECORD.flags) & TRUNCATED) !== 0,
    observed: (raw.readUInt16LE(RECORD.flags) & OBSERVED) !== 0,
  };
}

/** A key as printed: the characters of an identifier (and . -), others as _. */
function key(k: string): string {
  return k.replace(/[^A-Za-z0-9_.-]/g, '_') || '_';
}

/**
 * A value as printed: `error` is the errno, by name. krsi_refuse names its
 * two in the kernel; a number (the observer's verdict, deny_exec_hash's IMA
 * error: any errno) is named here, where the whole table is (errnoName).
 */
function value(k: string, v: string): string {
  return k === 'error' && /^\d+$/.test(v) ? errnoName(Number(v)) : quote(v);
}

/** 2025-01-31T12:00:00.123456Z */
export function isoMicros(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const micros = Number((ns / 1000n) % 1000n);
  return new Date(ms).toISOString().slice(0, 23) + String(micros).padStart(3, '0') + 'Z';
}

export function formatRecord(r: EventRecord): string {
  const head = [
    `time=${isoMicros(r.timeNs)}`,
    `behaviour=${quote(r.behaviour || '-')}`,
    `program=${quote(r.program || '-')}`,
    `pid=${r.pid}`,
    `comm=${quote(r.comm)}`,
  ];
  for (const [k, v] of r.fields) head.push(`${key(k)}=${value(k, v)}`);
  if (r.truncated) head.push('truncated=1');
  return head.join(' ') + '\n';
}

export function lostLine(n: number, now = Date.now()): string {
  return `time=${isoMicros(BigInt(now) * 1_000_000n)} lost=${n}\n`;
}

export interface EventHubOptions {
  /** Lines a reader may have waiting before new ones are dropped (and counted). Default 4096. */
  queueLines?: number;
  /** Called when the first reader opens (true) and when the last one goes (false): the daemon reads the ring only then. */
  onReaders?: (some: boolean) => void;
}

/**
 * One open `events` file. Lines wait in a bounded queue until read; a read
 * with nothing to give waits. close() ends every waiting read with EOF.
 */
export class EventStream {
  private queue: Buffer[] = [];
  private head = 0;
  private lost = 0;
  private closed = false;
  private readonly waiters: { size: number; resolve: (b: Buffer) => void; reject: (e: unknown) => void; done: () => void }[] = [];
  private readyWaiter: (() => void) | null = null;

  constructor(
    private readonly hub: EventHub,
    private readonly max: number,
  ) {}

  /** Lines waiting, not yet read. */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** A read would answer now: lines queued, a loss to report, or the end. */
  get ready(): boolean {
    return this.closed || this.pending > 0 || this.lost > 0;
  }

  /**
   * Call cb once, as soon as the stream is ready (at once if it is now): what
   * poll(2) on the file waits for. One at a time: a later cb replaces one not
   * yet called (a poller that polls again gives a new one).
   */
  onReady(cb: () => void): void {
    this.readyWaiter = cb;
    this.fireReady();
  }

  /** Records this reader has missed and not yet been told about. */
  get unreportedLost(): number {
    return this.lost;
  }

  push(line: Buffer): void {
    if (this.closed) return;
    if (this.lost > 0) {
      if (this.pending + 2 > this.max) {
        this.lost++;
        return;
      }
      this.queue.push(Buffer.from(lostLine(this.lost)));
      this.lost = 0;
    }
    if (this.pending >= this.max) {
      this.lost++;
      return;
    }
    this.queue.push(line);
    this.wake();
  }

  /** n records went missing for every reader (the kernel ring was full). */
  miss(n: number): void {
    if (this.closed || n <= 0) return;
    this.lost += n;
    this.wake();
  }

  /**
   * Whole lines, at most size bytes (a line longer than size comes in
   * pieces). Waits while there is nothing. Rejects with EINTR when signal
   * aborts first; resolves empty (EOF) once the stream is closed.
   */
  read(size: number, signal?: AbortSignal): Promise<Buffer> {
    if (this.closed) return Promise.resolve(Buffer.alloc(0));
    if (this.pending > 0 || this.lost > 0) return Promise.resolve(this.take(size));
    if (signal?.aborted) return Promise.reject(new KrsiError('EINTR', 'events: read interrupted'));
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new KrsiError('EINTR', 'events: read interrupted by a signal'));
      };
      const w = { size, resolve, reject, done: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    for (const w of this.waiters.splice(0)) {
      w.done();
      w.resolve(Buffer.alloc(0));
    }
    this.hub.forget(this);
    this.fireReady();
  }

  private wake(): void {
    while (this.waiters.length > 0 && (this.pending > 0 || this.lost > 0)) {
      const w = this.waiters.shift()!;
      w.done();
      w.resolve(this.take(w.size));
    }
    // what blocked reads did not take is there for pollers
    this.fireReady();
  }

  private fireReady(): void {
    const cb = this.readyWaiter;
    if (!cb || !this.ready) return;
    this.readyWaiter = null;
    cb();
  }

  private take(size: number): Buffer {
    if (this.pending === 0 && this.lost > 0) {
      const l = Buffer.from(lostLine(this.lost));
      this.lost = 0;
      this.queue.push(l);
    }
    const out: Buffer[] = [];
    let n = 0;
    while (this.head < this.queue.length) {
      const line = this.queue[this.head]!;
      if (n + line.length > size) {
        if (n === 0) {
          // a line longer than the read: give what fits, keep the rest
          out.push(line.subarray(0, size));
          this.queue[this.head] = line.subarray(size);
          n = size;
        }
        break;
      }
      out.push(line);
      n += line.length;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return Buffer.concat(out, n);
  }
}

/** Every open `events` reader, and the records to hand each of them. */
export class EventHub {
  private readonly streams = new Set<EventStream>();
  private readonly max: number;
  /** Records published, and records every reader missed (kernel ring full). */
  readonly stats = { records: 0, kernelLost: 0 };

  private readonly onReaders: ((some: boolean) => void) | undefined;

  constructor(opts: EventHubOptions = {}) {
    this.max = opts.queueLines ?? 4096;
    this.onReaders = opts.onReaders;
  }

  get readers(): number {
    return this.streams.size;
  }

  open(): EventStream {
    const s = new EventStream(this, this.max);
    this.streams.add(s);
    if (this.streams.size === 1) this.onReaders?.(true);
    return s;
  }

  /** Hand one line to every reader. With no reader the line is dropped: like trace_pipe, events are for who is listening. */
  publish(line: string): void {
    this.stats.records++;
    if (this.streams.size === 0) return;
    const b = Buffer.from(line);
    for (const s of this.streams) s.push(b);
  }

  /** n records were refused by the full kernel ring: every reader missed them. */
  kernelLost(n: number): void {
    if (n <= 0) return;
    this.stats.kernelLost += n;
    for (const s of this.streams) s.miss(n);
  }

  /** Called by EventStream.close. */
  forget(s: EventStream): void {
    if (this.streams.delete(s) && this.streams.size === 0) this.onReaders?.(false);
  }

  closeAll(): void {
    for (const s of [...this.streams]) s.close();
  }
}
