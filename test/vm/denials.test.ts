// Every denial is reported and counted, on a real BPF LSM kernel: boot the VM
// without a daemon, let the guest script (fixtures/denials.guest.ts) start,
// kill and restart its own, and fail here if any step fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`the denial observer and stats: silent programs, dedupe, paths, a burst, lifecycle, capacity (${kernel})`, (t) =>
    runGuestSuite(t, {
      name: 'denials',
      steps: 8,
      mount: false,
      notes: /# (burst: .*)/,
      after: 'echo "# daemon logs:"; tail -n 30 /tmp/krsifs-*.log | sed "s/^/#   /"',
      kernel,
    }),
  );
}
