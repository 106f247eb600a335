// The end-to-end suite on a real BPF LSM kernel: boot Debian's stock kernel
// under QEMU (krsifs vm), run the guest steps there, and fail here if any
// step fails there. Boot time and each step's duration are printed.
import t from 'tap';
import { runInVm } from '../../lib/vm/index.js';

const STEPS = 10;

interface GuestResult { ok: boolean; name: string; diag: string[] }

/** The top-level results of node:test's TAP reporter, with their YAML blocks. */
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

t.test('krsifs on a real BPF LSM kernel: attach, enforce, list, replace, detach, refuse', async (t) => {
  const run = await runInVm({
    command: 'cd /krsifs/bpf/obj && node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/e2e.guest.js',
    timeoutSec: 600,
  });
  t.comment(`kernel ${run.kernel.version}; prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
  for (const m of run.messages) t.comment(`guest: ${m}`);
  const results = parseGuestTap(run.output);
  for (const r of results) {
    const ms = r.diag.map((l) => /^\s+duration_ms: ([\d.]+)/.exec(l)?.[1]).find(Boolean);
    t.comment(`step ${r.name.split('.')[0]}: ${ms ? Math.round(Number(ms)) : '?'} ms`);
    if (r.ok) t.pass(r.name);
    else t.fail(r.name, { diagnostic: true, guest: r.diag.join('\n') });
  }
  t.equal(results.length, STEPS, `all ${STEPS} guest steps ran`);
  t.equal(run.exitCode, 0, 'the guest suite exited 0');
  if (run.exitCode !== 0 || results.length !== STEPS) t.comment(run.output.split('\n').slice(-80).join('\n'));
});
