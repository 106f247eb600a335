// A policy directory: *.conf files, applied in lexical (byte) order, one
// declaration per line:
//   BEHAVIOUR PATH [KEY=VALUE ...] [mode=enforce|monitor]
// where "PATH [KEY=VALUE ...]" is exactly what one would write to that
// behaviour's file. Blank lines and lines starting with # are ignored. A
// relative PATH resolves against the directory of its .conf. Only attach
// lines belong here: a declaration says what is attached, not what to do.
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { parseLine, type Mode } from '../core/grammar.js';
import { checkTrusted } from './trust.js';

export const DEFAULT_POLICY_DIR = '/etc/krsifs/policies.d';
/** A policy file bigger than this is refused: it is text typed by people. */
const MAX_CONF = 1 << 20;

export interface Declaration {
  /** The .conf file and its line number (1-based). */
  conf: string;
  lineNo: number;
  /** The line as written in the file, trimmed. */
  text: string;
  behaviour: string;
  /** The object's absolute path (a relative one resolved against the .conf's directory). */
  path: string;
  globals: Record<string, string>;
  mode: Mode;
}

/** A line (or a file, or the directory: lineNo 0) that declares nothing because it is wrong. */
export interface Problem {
  conf: string;
  lineNo: number;
  text: string;
  behaviour: string | null;
  error: KrsiError;
}

export interface PolicySet {
  dir: string;
  /** The .conf files read, in order. */
  files: string[];
  declarations: Declaration[];
  problems: Problem[];
}

/** FILE:N, or FILE alone for a problem with the whole file. */
export function where(p: { conf: string; lineNo: number }): string {
  return p.lineNo > 0 ? `${p.conf}:${p.lineNo}` : p.conf;
}

/**
 * Which behaviours a line may name: those that have a file here. `why` says
 * why another name is refused (no hook on this kernel, not in the catalogue).
 */
export interface BehaviourNames {
  has(behaviour: string): boolean;
  why(behaviour: string): string;
}

/**
 * Read every *.conf in `dir`. Never throws for what is in the directory:
 * each wrong line, unreadable file or untrusted file is a Problem, and the
 * other lines still declare. A missing directory is one Problem (ENOENT).
 */
export async function readPolicyDir(dir: string, behaviours: BehaviourNames): Promise<PolicySet> {
  const set: PolicySet = { dir, files: [], declarations: [], problems: [] };
  const problem = (conf: string, lineNo: number, text: string, behaviour: string | null, error: KrsiError) =>
    set.problems.push({ conf, lineNo, text, behaviour, error });
  let names: string[];
  try {
    await checkTrusted(dir, 'policy directory');
    names = (await readdir(dir)).filter((n) => n.endsWith('.conf') && !n.startsWith('.'));
  } catch (e) {
    problem(dir, 0, '', null, KrsiError.from(e, `policy directory ${dir}`));
    return set;
  }
  // byte order, whatever the locale: 10-base.conf before 20-local.conf before a.conf
  names.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  for (const name of names) {
    const conf = path.join(dir, name);
    let text: string;
    try {
      text = await readConf(conf);
    } catch (e) {
      problem(conf, 0, '', null, KrsiError.from(e, `policy file ${conf}`));
      continue;
    }
    set.files.push(conf);
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const d = parseDeclaration(conf, i + 1, line, behaviours);
      if ('error' in d) set.problems.push(d);
      else set.declarations.push(d);
    });
  }
  return set;
}

/** A .conf's text: a regular file, trusted (root's, written by root only), UTF-8, at most 1 MiB. */
async function readConf(conf: string): Promise<string> {
  await checkTrusted(conf, 'policy file');
  const fh = await open(conf, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KrsiError('EINVAL', 'not a regular file');
    if (st.size > MAX_CONF) throw new KrsiError('E2BIG', `larger than ${MAX_CONF} bytes`);
    const buf = await fh.readFile();
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch {
      throw new KrsiError('EINVAL', 'not valid UTF-8');
    }
  } finally {
    await fh.close();
  }
}

/** One non-comment line of a .conf: a Declaration, or the Problem with it. */
export function parseDeclaration(conf: string, lineNo: number, text: string, behaviours: BehaviourNames): Declaration | Problem {
  const fail = (behaviour: string | null, code: string, msg: string): Problem => ({
    conf, lineNo, text, behaviour,
    error: new KrsiError(code, `${conf}:${lineNo}: ${msg}`, { details: { policy: `${conf}:${lineNo}` } }),
  });
  const m = /^(\S+)\s*(.*)$/.exec(text)!;
  const behaviour = m[1]!;
  const rest = m[2]!;
  if (!behaviours.has(behaviour)) {
    return fail(null, 'EINVAL', `no behaviour file named ${behaviour} here (${behaviours.why(behaviour)})`);
  }
  let cmd;
  try {
    cmd = parseLine(rest);
  } catch (e) {
    const err = KrsiError.from(e);
    return fail(behaviour, err.code, err.message);
  }
  if (cmd.kind === 'empty') return fail(behaviour, 'EINVAL', `${behaviour} needs an object: BEHAVIOUR PATH [KEY=VALUE ...]`);
  if (cmd.kind !== 'attach') {
    return fail(behaviour, 'EINVAL', `only PATH [KEY=VALUE ...] lines belong in a policy file, not ${rest.trim()} ` +
      '(remove the line that declares a program to have it detached at the next reload with --prune)');
  }
  return {
    conf, lineNo, text, behaviour,
    path: path.resolve(path.dirname(conf), cmd.path),
    globals: cmd.globals,
    mode: cmd.mode,
  };
}

/** A token of the write grammar that reads back as `s`, whatever it holds. */
export function token(s: string): string {
  return /^[^\s'"\\!#]+$/.test(s) && s !== '' ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/** The line to run for a declaration: its object's absolute path and its settings. */
export function lineOf(d: Declaration): string {
  const mode = d.mode === 'enforce' ? [] : [`mode=${d.mode}`];
  return [token(d.path), ...Object.entries(d.globals).map(([k, v]) => token(`${k}=${v}`)), ...mode].join(' ');
}
