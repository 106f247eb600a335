// Step lines for `krsifs vm`: "vm: <step>..." then "vm: <result> (1.2 s)".
// On a terminal the pending line is replaced by its result; elsewhere only
// the result is printed, one plain line per step.

export type Reporter = (line: string) => void;

export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export class Progress {
  private readonly tty: boolean;
  constructor(private readonly out: NodeJS.WriteStream | null = process.stderr) {
    this.tty = Boolean(out?.isTTY);
  }

  private pending = false;

  /** A line of its own; a pending "doing..." line is replaced by it. */
  line(s: string): void {
    if (this.pending && this.tty) this.out?.write('\r\x1b[K');
    this.pending = false;
    this.out?.write(`vm: ${s}\n`);
  }

  /** Show "doing..." on a terminal until the next line. */
  begin(doing: string): void {
    if (!this.tty) return;
    this.out?.write(`vm: ${doing}...`);
    this.pending = true;
  }

  /** Run fn as a step; done turns its result into the line printed with the duration. */
  async step<T>(doing: string, fn: () => Promise<T>, done: (r: T) => string): Promise<T> {
    const t0 = Date.now();
    this.begin(doing);
    try {
      const r = await fn();
      this.line(`${done(r)} (${seconds(Date.now() - t0)})`);
      return r;
    } catch (e) {
      this.line(`${doing}: failed after ${seconds(Date.now() - t0)}`);
      throw e;
    }
  }
}
