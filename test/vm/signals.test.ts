// The signal policies (mem_write, exec_log) on a real BPF LSM kernel: run the
// guest steps (fixtures/signals.guest.ts) there, fail here if any fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`signal policies on a real BPF LSM kernel (${kernel})`, (t) =>
    runGuestSuite(t, {
      name: 'signals',
      steps: 5,
      // only on failure: a long tail on the serial console just before the
      // guest powers off has twice cost the runner the exit line (under load)
      after: 'if [ $s -ne 0 ]; then echo "# daemon log:"; sed "s/^/#   /" /tmp/krsifs.log | tail -40; fi',
      notes: /exec burst: .*/,
      kernel,
    }),
  );
}
