// error_log: what went wrong with each failed write, newest last, bounded so a
// script hammering a file with bad lines cannot grow the daemon's memory.
import type { KrsiError } from '../errors.js';
import { strerror } from './strerror.js';
import { escapeText, quoted } from '../text.js';

export const DEFAULT_ERROR_LOG_SIZE = 128;
/** How much of a verifier log an entry keeps: its end is where the cause is. */
export const VERIFIER_TAIL_LINES = 20;
const MAX_SHOWN_LINE = 256;

export interface ErrorEntry {
  time: Date;
  file: string;
  line: string;
  errno: number;
  code: string;
  message: string;
  verifierTail: string[];
  verifierLines: number;
}

export class ErrorLog {
  private entries: ErrorEntry[] = [];
  /** Entries dropped since the last clear, reported so nobody misses them. */
  private dropped = 0;

  constructor(readonly capacity = DEFAULT_ERROR_LOG_SIZE) {}

  add(file: string, line: string, err: KrsiError, time = new Date()): ErrorEntry {
    const log = err.verifierLog ?? [];
    const object = err.details.object;
    const message =
      typeof object === 'string' && !err.message.includes(object) ? `${err.message} (object ${object})` : err.message;
    const entry: ErrorEntry = {
      time,
      file,
      line,
      errno: err.errno,
      code: err.code,
      message,
      verifierTail: log.slice(-VERIFIER_TAIL_LINES),
      verifierLines: log.length,
    };
    this.entries.push(entry);
    while (this.entries.length > this.capacity) {
      this.entries.shift();
      this.dropped++;
    }
    return entry;
  }

  clear(): void {
    this.entries = [];
    this.dropped = 0;
  }

  list(): readonly ErrorEntry[] {
    return this.entries;
  }

  /**
   * One entry per failed write:
   *   TIME FILE: "LINE": CODE (strerror): MESSAGE
   *       verifier: …   (the last lines of the verifier's log, when there is one)
   * Everything a writer or an object chose (the line, paths and names in the
   * message, the verifier's quotes) is escaped: an entry is one line, and it
   * holds no terminal control.
   */
  text(): string {
    const out: string[] = [];
    if (this.dropped > 0) out.push(`(${this.dropped} older entries dropped: the log keeps ${this.capacity})`);
    for (const e of this.entries) {
      const line = e.line.length > MAX_SHOWN_LINE ? e.line.slice(0, MAX_SHOWN_LINE) + '…' : e.line;
      const shown = e.line === '' ? '(no line)' : quoted(line);
      out.push(`${e.time.toISOString()} ${e.file}: ${shown}: ${e.code} (${strerror(e.errno)}): ${escapeText(e.message)}`);
      if (e.verifierLines > e.verifierTail.length) {
        out.push(`    verifier: (${e.verifierLines - e.verifierTail.length} earlier lines omitted)`);
      }
      for (const v of e.verifierTail) out.push(`    verifier: ${escapeText(v)}`);
    }
    return out.length ? out.join('\n') + '\n' : '';
  }
}
