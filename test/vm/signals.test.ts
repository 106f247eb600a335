// The signal policies (mem_write, exec_log) on a real BPF LSM kernel: run the
// guest steps (fixtures/signals.guest.ts) there, fail here if any fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`signal policies on a real BPF LSM kernel (${kernel})`, (t) =>
    runGuestSuite(t, {
      name: 'signals',
      steps: 4,
      after: 'echo "# daemon log:"; sed "s/^/#   /" /tmp/krsifs.log | tail -40',
      notes: /exec burst: .*/,
      kernel,
    }),
  );
}
