// Programs other loaders loaded, and .bss/.data globals, on a real BPF LSM
// kernel (fixtures/interop.guest.ts): bpftool-pinned programs by pin path and
// by id, a writer's own fd, a wrong hook, .bss settings; exec really denied,
// bpftool agrees; adoption after SIGKILL.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';

for (const kernel of testKernels()) {
  t.test(`pinned programs, id:N, /proc/self/fd/N, a wrong hook, .bss/.data globals (${kernel})`, (t) =>
    runGuestSuite(t, { name: 'interop', steps: 5, mount: false, kernel }),
  );
}
