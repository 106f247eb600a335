// The end-to-end suite on a real BPF LSM kernel: boot Debian's stock kernel
// under QEMU (krsifs vm), run the guest steps there (fixtures/e2e.guest.ts),
// and fail here if any step fails there.
import t from 'tap';
import { runGuestSuite } from '../helpers/guest-suite.js';

t.test('krsifs on a real BPF LSM kernel: attach, enforce, list, replace, detach, refuse', (t) =>
  runGuestSuite(t, { name: 'e2e', steps: 10 }),
);
