// Structured log lines on stderr: time=… level=… msg="…" key=value …
// (logfmt, so grep, cut and log shippers can read them).
import { fstatSync } from 'node:fs';
import { quote } from './text.js';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}


export function formatLine(level: Level, msg: string, fields: Fields = {}, now: Date | null = new Date()): string {
  const parts = [...(now ? [`time=${now.toISOString()}`] : []), `level=${level}`, `msg=${quote(msg)}`];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    parts.push(`${k}=${quote(String(v))}`);
  }
  return parts.join(' ');
}

/** sd-daemon(3) priority prefixes: journald files each line at its level. */
const PRIORITY: Record<Level, string> = { debug: '<7>', info: '<6>', warn: '<4>', error: '<3>' };

/**
 * Is stderr the journal? systemd sets JOURNAL_STREAM=DEV:INODE of the stream
 * it connected; a child that inherited the variable but not the stream must
 * not take it for one.
 */
export function stderrIsJournal(env = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(2, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

export function createLogger(
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  minLevel: Level = 'info',
  /** Lines for the journal: no time= (it stamps each line itself), a priority prefix instead. */
  journal = false,
): Logger {
  const order: Level[] = ['debug', 'info', 'warn', 'error'];
  const min = order.indexOf(minLevel);
  const at = (level: Level) => (msg: string, fields?: Fields) => {
    if (order.indexOf(level) < min) return;
    write(journal ? PRIORITY[level] + formatLine(level, msg, fields, null) : formatLine(level, msg, fields));
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
