// Policies survive the daemon, on a real BPF LSM kernel: boot the VM without
// a daemon, let the guest script start, SIGKILL, restart and stop its own
// (test/vm/fixtures/persist.guest.ts), and fail here if any step fails there.
import t from 'tap';
import { runInVm } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from '../helpers/guest-tap.js';

const STEPS = 8;

t.test('pinning, adoption after SIGKILL and restart, rm of a pin, the hook limit, a changed catalogue, --ephemeral', async (t) => {
  const run = await runInVm({
    mount: false,
    command: 'cd /krsifs/bpf/obj && node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/persist.guest.js',
    timeoutSec: 600,
  });
  t.comment(`kernel ${run.kernel.version}; prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
  for (const m of run.messages) t.comment(`guest: ${m}`);
  const limit = /# measured limit: (\d+)/.exec(run.output)?.[1];
  if (limit) t.comment(`measured limit: ${limit} programs per hook on ${run.kernel.version}`);
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
