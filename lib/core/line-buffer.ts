// Reassembles lines from the writes of one open file: shells, dd and tee split
// a line over several write(2) calls, or put several lines in one.
import { MAX_LINE } from './grammar.js';

/** A complete line (without its newline), or a line that grew too long. */
export type LineItem = { line: Buffer } | { tooLong: true };

export class LineBuffer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Set once a line overflowed: the rest of it is dropped up to its newline. */
  private discarding = false;

  /**
   * Take the bytes of one write; return what it completed, in order. A line
   * that grows past MAX_LINE yields one `tooLong` item, and its remainder is
   * dropped up to the next newline so the following line is read cleanly.
   */
  push(data: Buffer): LineItem[] {
    const items: LineItem[] = [];
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      const end = nl === -1 ? data.length : nl;
      const piece = data.subarray(start, end);
      if (this.discarding) {
        if (nl !== -1) this.discarding = false;
      } else if (this.pendingBytes + piece.length > MAX_LINE) {
        this.pending = [];
        this.pendingBytes = 0;
        this.discarding = nl === -1;
        items.push({ tooLong: true });
      } else {
        // copy: the caller's buffer may be reused after the write returns
        if (piece.length) this.pending.push(Buffer.from(piece));
        this.pendingBytes += piece.length;
        if (nl !== -1) items.push({ line: this.take() });
      }
      if (nl === -1) break;
      start = nl + 1;
    }
    return items;
  }

  /** A line has begun and not ended (or an overlong one is being dropped). */
  get partial(): boolean {
    return this.pendingBytes > 0 || this.discarding;
  }

  /** Drop everything not yet returned, as if the file had just been opened. */
  reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.discarding = false;
  }

  /** The last line when it had no newline (it runs at close), or null. */
  flush(): Buffer | null {
    this.discarding = false;
    if (this.pendingBytes === 0) return null;
    return this.take();
  }

  private take(): Buffer {
    const bytes = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return bytes;
  }
}
