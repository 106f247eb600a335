// What the FUSE layer tells a handler about its request besides its
// arguments: an AbortSignal that aborts on FUSE_INTERRUPT (the caller got a
// signal), and, for whoever must keep an eye on the caller after that (see
// lib/fs/signals.ts), a second one that aborts once the request is answered;
// and the bits a poll handler answers with. No addon here: the filesystem
// layer uses it without loading the FUSE binding.

/** poll(2)'s event bits (the values the kernel's FUSE poll takes). */
export const POLL = { IN: 0x1, PRI: 0x2, OUT: 0x4, ERR: 0x8, HUP: 0x10, RDNORM: 0x40, WRNORM: 0x100 } as const;
/** What a file without a poll handler reports: always readable and writable (the kernel's DEFAULT_POLLMASK). */
export const POLL_ALWAYS = POLL.IN | POLL.OUT | POLL.RDNORM | POLL.WRNORM;

const answeredBy = new WeakMap<AbortSignal, AbortSignal>();

/** The signals of one interruptible request (read, write, flush, setattr). */
export class RequestSignals {
  private readonly onInterrupt = new AbortController();
  private readonly onAnswer = new AbortController();

  constructor() {
    answeredBy.set(this.onInterrupt.signal, this.onAnswer.signal);
  }

  /** Aborts when FUSE_INTERRUPT comes for the request. */
  get interrupted(): AbortSignal {
    return this.onInterrupt.signal;
  }

  interrupt(): void {
    this.onInterrupt.abort();
  }

  /** The handler has settled: the reply is on its way. */
  answered(): void {
    this.onAnswer.abort();
  }
}

/**
 * For an interrupt signal the FUSE layer gave a handler: a signal that aborts
 * once that request has been answered (nothing waits for it any more).
 * Undefined for any other signal.
 */
export function answeredSignal(interrupted: AbortSignal): AbortSignal | undefined {
  return answeredBy.get(interrupted);
}
