// The top-level results of node:test's TAP reporter, as the guest suites
// print them (test/vm/fixtures/*.guest.ts run inside the VM).
export interface GuestResult {
  ok: boolean;
  name: string;
  diag: string[];
}

/** The top-level results, with their YAML blocks. */
export function parseGuestTap(output: string): GuestResult[] {
  const results: GuestResult[] = [];
  let cur: GuestResult | null = null;
  for (const line of output.split(/\r?\n/)) {
    const m = /^(not )?ok \d+ - (.*)$/.exec(line);
    if (m) {
      cur = { ok: !m[1], name: m[2]!, diag: [] };
      results.push(cur);
    } else if (cur && line.startsWith('  ')) {
      cur.diag.push(line);
    } else {
      cur = null;
    }
  }
  return results;
}

/** Each step's duration from its YAML block, in ms (undefined when absent). */
export function durationMs(r: GuestResult): number | undefined {
  const ms = r.diag.map((l) => /^\s+duration_ms: ([\d.]+)/.exec(l)?.[1]).find(Boolean);
  return ms ? Math.round(Number(ms)) : undefined;
}
