// Text that came from outside (paths, names, lines written to the files, a
// process's comm, verifier logs quoting an object's strings) is escaped
// wherever krsifs prints it: one printed entry is one line, and no byte of an
// attacker's choosing reaches an operator's terminal as a control. Escaped:
// the backslash, C0 controls and DEL, C1 controls (U+0080-U+009F, which some
// terminals obey), and the Unicode line separators and bidirectional
// overrides that make text read differently from what it is.
const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

const HAS_UNSAFE = new RegExp(UNSAFE.source);

const NAMED: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const n = c.charCodeAt(0);
  return n <= 0xff ? '\\x' + n.toString(16).padStart(2, '0') : '\\u' + n.toString(16).padStart(4, '0');
}

/** `s` with every unsafe character as a C-style escape (\n, \t, \xNN, \uNNNN). */
export function escapeText(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/** `s` in double quotes, escaped (\" too). */
export function quoted(s: string): string {
  return `"${escapeText(s).replace(/"/g, '\\"')}"`;
}

/** A value as printed in key=value text: bare when safe, else quoted(). */
export function quote(s: string): string {
  return s !== '' && !/[\s"]/.test(s) && !HAS_UNSAFE.test(s) ? s : quoted(s);
}
