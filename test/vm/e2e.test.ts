// The end-to-end suite on a real BPF LSM kernel: boot each test kernel (6.1,
// 6.12: testKernels()) under QEMU (krsifs vm --kernel), run the guest steps
// there (fixtures/e2e.guest.ts), and fail here if any step fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`krsifs on a real BPF LSM kernel (${kernel}): attach, enforce, list, replace, detach, refuse`, (t) =>
    runGuestSuite(t, { name: 'e2e', steps: 11, kernel }),
  );
}
