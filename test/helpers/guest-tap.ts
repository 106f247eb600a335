// The top-level results of node:test's TAP reporter, as the guest suites
// print them (test/vm/fixtures/*.guest.ts run inside the VM), read with
// tap-parser. A guest step passes only when it ran and passed: `ok … # SKIP`
// and `# TODO` are not passes (a step that did not check its claim in the
// guest has proven nothing), and neither is a bail-out.
import { Parser, type Result } from 'tap-parser';

export interface GuestResult {
  ok: boolean;
  name: string;
  /** The step's YAML diagnostics (the error, its stack), as tap-parser read them. */
  diag: Record<string, unknown> | null;
  /** Why a step that reported ok does not count as a pass ('skipped: …', 'todo: …'), if it does not. */
  notPassed?: string;
  /** duration_ms of the step, when the guest reported it. */
  timeMs?: number;
}

/** The top-level results, in order, and whether the stream bailed out. */
export function parseGuestTap(output: string): GuestResult[] {
  const results: GuestResult[] = [];
  let bailout: string | false = false;
  const p = new Parser();
  p.on('assert', (r: Result) => {
    let notPassed: string | undefined;
    if (r.skip !== false) notPassed = `skipped in the guest${typeof r.skip === 'string' && r.skip ? `: ${r.skip}` : ''}`;
    else if (r.todo !== false) notPassed = `marked TODO in the guest${typeof r.todo === 'string' && r.todo ? `: ${r.todo}` : ''}`;
    results.push({
      ok: r.ok && notPassed === undefined,
      name: r.name,
      diag: (r.diag as Record<string, unknown> | null) ?? null,
      ...(notPassed ? { notPassed } : {}),
      ...(typeof r.time === 'number' ? { timeMs: r.time } : {}),
    });
  });
  p.on('bailout', (reason: string) => (bailout = reason || 'no reason given'));
  // the serial console turns \n into \r\n
  p.end(output.replace(/\r\n/g, '\n'));
  if (bailout !== false) results.push({ ok: false, name: `the guest bailed out: ${bailout}`, diag: null });
  return results;
}

/** Each step's duration in ms (undefined when absent). */
export function durationMs(r: GuestResult): number | undefined {
  return r.timeMs === undefined ? undefined : Math.round(r.timeMs);
}

/** A guest script's output cut at its `@@section NAME` lines: NAME → what followed it. */
export function sections(out: string): Map<string, string> {
  const m = new Map<string, string>();
  let name = '';
  for (const line of out.split('\n')) {
    const s = /^@@section (\S+)$/.exec(line);
    if (s) name = s[1]!;
    else if (name) m.set(name, (m.get(name) ?? '') + line + '\n');
  }
  return m;
}
