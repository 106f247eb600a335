// A kernel module that hides itself, on a real BPF LSM kernel: the guest
// steps (fixtures/modules.guest.ts) load test modules built for each kernel
// (fixtures/modules/, test/helpers/test-modules.ts) with hidden_module.o
// attached; fail here if any step fails there.
import t from 'tap';
import { runGuestSuite, testKernels } from '../helpers/guest-suite.js';
import { buildTestModules } from '../helpers/test-modules.js';

for (const kernel of testKernels()) {
  t.test(`a module hiding itself is reported (${kernel})`, async (t) => {
    const built = await buildTestModules(kernel);
    t.comment(`test modules for ${kernel}: ${built.join(', ')}`);
    await runGuestSuite(t, {
      name: 'modules',
      steps: 4,
      mount: false,
      after: 'echo "# daemon logs:"; for f in /tmp/krsifs-*.log; do sed "s/^/#   /" $f | tail -15; done',
      kernel,
    });
  });
}
