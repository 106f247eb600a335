// The end-to-end suite on a real BPF LSM kernel: boot Debian's stock kernel
// under QEMU (krsifs vm), run the guest steps there, and fail here if any
// step fails there. Boot time and each step's duration are printed.
import t from 'tap';
import { runInVm } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from '../helpers/guest-tap.js';

const STEPS = 10;

t.test('krsifs on a real BPF LSM kernel: attach, enforce, list, replace, detach, refuse', async (t) => {
  const run = await runInVm({
    command: 'cd /krsifs/bpf/obj && node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/e2e.guest.js',
    timeoutSec: 600,
  });
  t.comment(`kernel ${run.kernel.version}; prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
  for (const m of run.messages) t.comment(`guest: ${m}`);
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
