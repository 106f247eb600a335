// The seed policies and the events stream on a real BPF LSM kernel: run the
// guest steps (fixtures/policies.guest.ts) there, fail here if any fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`seed policies and events on a real BPF LSM kernel (${kernel})`, (t) =>
    runGuestSuite(t, {
      name: 'policies',
      steps: 11,
      after: 'echo "# daemon log:"; sed "s/^/#   /" /tmp/krsifs.log | tail -40',
      notes: /burst: .*/,
      kernel,
    }),
  );
}
