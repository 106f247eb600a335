// The kernel layer (lib/kernel) on a real BPF LSM kernel: the success side of
// test/kernel/load.test.ts, run in the guest (fixtures/kernel.guest.ts), which
// a host that refuses BPF LSM programs cannot run. Fail here if any step fails there.
import t from 'tap';
import { runGuestSuite } from '../helpers/guest-suite.js';
import { kernelSteps } from './fixtures/kernel-steps.js';

t.test('loadAndAttach, linkInfo/progInfo against bpftool, refusals, pins read by pinnedLinks on a real BPF LSM kernel', (t) =>
  runGuestSuite(t, { name: 'kernel', steps: kernelSteps.length, mount: false }),
);
