// The write grammar of a behaviour file, one command per line:
//   PATH [KEY=VALUE ...] [mode=enforce|monitor]
//                          attach every LSM program of the object at PATH
//                          (or the loaded program pinned at PATH, or the
//                          writer's program fd at /proc/self/fd/N)
//   id:N                   attach the loaded program with id N
//   !NAME                  detach the program called NAME
//   !*                     detach every program
// Tokens are separated by blanks; a token may be quoted with '...' or "..."
// (so a PATH or VALUE can hold spaces), and \ escapes the next character
// outside single quotes.
import { KrsiError } from '../errors.js';
import { KRSIFS_GLOBALS } from './globals.js';

export const MAX_LINE = 4096;

/** enforce: a policy's refusals refuse; monitor: they are reported (action=would-deny) and the operation goes on. */
export type Mode = 'enforce' | 'monitor';
export const MODES: readonly Mode[] = ['enforce', 'monitor'];

export type Command =
  | { kind: 'attach'; path: string; globals: Record<string, string>; mode: Mode; programId?: number }
  | { kind: 'detach'; name: string }
  | { kind: 'detachAll' }
  | { kind: 'empty' };

const globalName = /^[A-Za-z_][A-Za-z0-9_]*$/;

function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let cur = '';
  let inToken = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t') {
      if (inToken) tokens.push(cur);
      cur = '';
      inToken = false;
      continue;
    }
    inToken = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < line.length) cur += line[++i];
    else cur += c;
  }
  if (quote) throw new KrsiError('EINVAL', `parse line: unterminated ${quote} quote`);
  if (inToken) tokens.push(cur);
  return tokens;
}

/** Parse one line (without its newline). Throws EINVAL or E2BIG. */
export function parseLine(line: string): Command {
  if (Buffer.byteLength(line) > MAX_LINE) {
    throw new KrsiError('E2BIG', `parse line: longer than ${MAX_LINE} bytes`);
  }
  if (line.includes('\0')) throw new KrsiError('EINVAL', 'parse line: contains a NUL byte');
  const tokens = tokenize(line.replace(/\r$/, ''));
  if (tokens.length === 0) return { kind: 'empty' };
  const [first, ...rest] = tokens as [string, ...string[]];

  if (first.startsWith('!') && !line.trimStart().startsWith('"') && !line.trimStart().startsWith("'")) {
    if (rest.length > 0) throw new KrsiError('EINVAL', `parse line: ${first} takes no arguments`);
    const name = first.slice(1);
    if (name === '*') return { kind: 'detachAll' };
    if (name === '') throw new KrsiError('EINVAL', 'parse line: "!" needs a program name, or * for all');
    return { kind: 'detach', name };
  }

  if (first === '') throw new KrsiError('EINVAL', 'parse line: empty object path');
  // id:N, a loaded program by its id (a file named like that: write ./id:N)
  let programId: number | undefined;
  if (first.startsWith('id:')) {
    const m = /^id:([1-9][0-9]{0,9})$/.exec(first);
    programId = m ? Number(m[1]) : NaN;
    if (!m || programId > 2 ** 32 - 1) {
      throw new KrsiError('EINVAL', `parse line: "${first}" is not id:N with N a program id (for a file of that name write ./${first})`);
    }
  }
  const globals: Record<string, string> = {};
  let mode: Mode | undefined;
  for (const tok of rest) {
    const eq = tok.indexOf('=');
    if (eq <= 0) {
      throw new KrsiError('EINVAL', `parse line: "${tok}" is not KEY=VALUE (one object path per line)`);
    }
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    // mode= is krsifs's own option, not an object global
    if (key === 'mode') {
      if (mode !== undefined) throw new KrsiError('EINVAL', 'parse line: mode is set twice');
      if (!(MODES as readonly string[]).includes(value)) {
        throw new KrsiError('EINVAL', `parse line: mode=${value}: the mode is enforce or monitor`);
      }
      mode = value as Mode;
      continue;
    }
    if (!globalName.test(key)) throw new KrsiError('EINVAL', `parse line: "${key}" is not a global variable name`);
    if (KRSIFS_GLOBALS.includes(key)) {
      throw new KrsiError('EINVAL', `parse line: ${key}: krsifs sets it itself at load` +
        (key === 'krsi_monitor' ? ' (use mode=monitor or mode=enforce)' : ''));
    }
    if (key in globals) throw new KrsiError('EINVAL', `parse line: ${key} is set twice`);
    globals[key] = value;
  }
  const attach = { kind: 'attach' as const, path: first, globals, mode: mode ?? 'enforce' };
  return programId === undefined ? attach : { ...attach, programId };
}
