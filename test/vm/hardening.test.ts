// Hardening, on a real BPF LSM kernel: the guest script
// (fixtures/hardening.guest.ts) SIGKILLs its own daemons in the middle of
// attach, replace and detach, runs 50 concurrent writers, kills writers
// mid-request, replays the bad-input corpus, and fills the daemon's libuv
// pool with verifier runs to check that a refusal and a cat do not wait for
// them; every step checks the files against the pins and bpftool. Fail here
// if any step fails there.
import t from 'tap';
import { hardeningKernel, runGuestSuite } from '../helpers/guest-suite.js';

// The longest suite, and the least kernel-specific: on one kernel only (hardeningKernel()).
// It starts 50 daemons in a row under TCG: 210 s on 6.12, 370 s on 6.1 measured
// here on a busy 2-core host, past tap's 300 s per file.
t.setTimeout(900_000);
const kernel = hardeningKernel();
t.test(`crash during writes, concurrent writers, killed writers, the bad-input corpus, a full pool (${kernel})`, (t) =>
  runGuestSuite(t, {
    kernel,
    name: 'hardening',
    steps: 6,
    mount: false,
    env: ['KRSIFS_HARDENING_SEED', 'KRSIFS_HARDENING_ITER', 'KRSIFS_CORPUS_SEED'],
    // node:test prints console output as TAP comments, its "#" escaped: "# \# hardening: …"
    notes: /^(?:# \\)?# hardening: ([^\r\n]*)/m,
  }),
);
