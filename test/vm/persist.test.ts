// Policies survive the daemon, on a real BPF LSM kernel: boot the VM without
// a daemon, let the guest script start, SIGKILL, restart and stop its own
// (fixtures/persist.guest.ts), and fail here if any step fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`pinning, adoption after SIGKILL and restart, rm of a pin, the hook limit, a changed catalogue, --ephemeral (${kernel})`, (t) =>
    runGuestSuite(t, { name: 'persist', steps: 8, mount: false, notes: /# (measured limit: \d+)/, kernel }),
  );
}
