// Hardening, on a real BPF LSM kernel: the guest script
// (test/vm/fixtures/hardening.guest.ts) SIGKILLs its own daemons in the
// middle of attach, replace and detach, runs 50 concurrent writers, kills
// writers mid-request and replays the bad-input corpus; every step checks
// the files against the pins and bpftool. Fail here if any step fails there.
import t from 'tap';
import { runInVm } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from '../helpers/guest-tap.js';

const STEPS = 5;

t.test('crash during writes, concurrent writers, killed writers, the bad-input corpus', async (t) => {
  const env = ['KRSIFS_HARDENING_SEED', 'KRSIFS_HARDENING_ITER', 'KRSIFS_CORPUS_SEED']
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${Number(process.env[k])} `)
    .join('');
  const run = await runInVm({
    mount: false,
    command: `cd /krsifs/bpf/obj && ${env}node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/hardening.guest.js`,
    timeoutSec: 600,
  });
  t.comment(`kernel ${run.kernel.version}; prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
  for (const m of run.messages) t.comment(`guest: ${m}`);
  // node:test prints console output as TAP comments, its "#" escaped: "# \\# hardening: …"
  for (const m of run.output.matchAll(/^(?:# \\)?# hardening: ([^\r\n]*)/gm)) t.comment(m[1]!);
  const results = parseGuestTap(run.output);
  for (const r of results) {
    t.comment(`step ${r.name.split('.')[0]}: ${durationMs(r)} ms`);
    if (r.ok) t.pass(r.name);
    else t.fail(r.name, { diagnostic: true, guest: r.diag.join('\n') });
  }
  t.equal(results.length, STEPS, `all ${STEPS} guest steps ran`);
  t.equal(run.exitCode, 0, 'the guest suite exited 0');
  if (run.exitCode !== 0 || results.length !== STEPS) t.comment(run.output.split('\n').slice(-80).join('\n'));
});
