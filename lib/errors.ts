import { constants } from 'node:os';

// Where two names share a number, the one glibc's strerrorname_np gives
// (what strace and the man pages print): EAGAIN, not EWOULDBLOCK; EOPNOTSUPP,
// not ENOTSUP; EDEADLK, not EDEADLOCK.
const PREFERRED = ['EAGAIN', 'EOPNOTSUPP', 'EDEADLK'];
const codeOf = new Map<number, string>();
for (const [code, n] of Object.entries(constants.errno)) if (!codeOf.has(n)) codeOf.set(n, code);
for (const code of PREFERRED) {
  const n = (constants.errno as Record<string, number | undefined>)[code];
  if (n !== undefined) codeOf.set(n, code);
}

/** The code of an errno value, such as 'EPERM' for 1; `E<n>` for a number the platform does not name. */
export function errnoName(n: number): string {
  return codeOf.get(n) ?? `E${n}`;
}

/** The errno value for a code such as 'EPERM'. */
export function errnoOf(code: string): number {
  const n = (constants.errno as Record<string, number>)[code];
  if (n === undefined) throw new TypeError(`unknown errno code ${code}`);
  return n;
}

export interface KrsiErrorOptions {
  /** The whole verifier log of a failed load, one entry per line. */
  verifierLog?: string[];
  /** Anything a caller may branch on or print: the path, the program, the hook. */
  details?: Record<string, unknown>;
}

/**
 * The one error type of krsifs. The addon builds instances of this class
 * (it receives the constructor at load), the core throws it, and the
 * filesystem turns `errno` into the answer of a write. Branch on `errno` or
 * `code`, never on `message`.
 */
export class KrsiError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly verifierLog: string[] | undefined;
  readonly details: Record<string, unknown>;

  constructor(errno: number | string, message: string, options: KrsiErrorOptions = {}) {
    super(message);
    this.name = 'KrsiError';
    this.errno = typeof errno === 'string' ? errnoOf(errno) : Math.abs(errno);
    this.code = errnoName(this.errno);
    this.verifierLog = options.verifierLog?.length ? options.verifierLog : undefined;
    this.details = options.details ?? {};
  }

  /** Wrap anything thrown into a KrsiError; unknown failures become EIO. */
  static from(e: unknown, context?: string): KrsiError {
    if (e instanceof KrsiError) return e;
    const err = e as NodeJS.ErrnoException | undefined;
    const code = typeof err?.code === 'string' && err.code in constants.errno ? err.code : 'EIO';
    const msg = err?.message ?? String(e);
    return new KrsiError(code, context ? `${context}: ${msg}` : msg);
  }
}
