// Run one guest suite (test/vm/fixtures/NAME.guest.ts, node:test) in the BPF
// LSM VM and report it here: boot and step times as comments, one assertion
// per guest step, and a failure when a step fails, is skipped or TODO, is
// missing, or the guest exits non-zero (then with the tail of its output).
import type { Test } from 'tap';
import { runInVm } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from './guest-tap.js';

/** The kernels `npm test` runs the VM suites on, unless $KRSIFS_TEST_KERNELS (comma-separated) says otherwise. */
export const DEFAULT_TEST_KERNELS = ['6.1', '6.12'];

/** `--kernel` values (6.1, 6.12, stock, a package name) from $KRSIFS_TEST_KERNELS, or DEFAULT_TEST_KERNELS. */
export function testKernels(): string[] {
  const env = (process.env.KRSIFS_TEST_KERNELS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  return env.length ? env : DEFAULT_TEST_KERNELS;
}

/**
 * The one kernel the long hardening suite runs on: $KRSIFS_HARDENING_KERNEL,
 * else 6.1 when it is a test kernel, else the first of testKernels(). Not
 * 6.12: under multi-threaded TCG here, a 6.12 guest panicked once in this
 * suite ("Fatal exception in interrupt", RIP inside the call just patched
 * into bpf_lsm_bpf: a vCPU ran the hook while the trampoline was being
 * attached), the emulation's cross-modifying code, not the kernel; 6.1 has
 * run it in every CI run.
 */
export function hardeningKernel(): string {
  const kernels = testKernels();
  return process.env.KRSIFS_HARDENING_KERNEL || (kernels.includes('6.1') ? '6.1' : kernels[0]!);
}

export interface GuestSuite {
  /** NAME of test/vm/fixtures/NAME.guest.ts. */
  name: string;
  /** How many top-level steps the guest script has: fewer is a failure. */
  steps: number;
  /** Start the VM's own daemon on /mnt/krsi first (default true). */
  mount?: boolean;
  /** Host environment variables (numbers) handed to the guest script, for replaying seeds. */
  env?: string[];
  /** Shell run after the script (its status is kept), e.g. to print the daemon's log. */
  after?: string;
  /** Guest output lines to repeat here as comments (the first group, or the whole match). */
  notes?: RegExp;
  /** `krsifs vm --kernel`: 6.1, 6.12, stock or a package name. */
  kernel?: string;
}

export async function runGuestSuite(t: Test, s: GuestSuite): Promise<void> {
  const env = (s.env ?? [])
    .filter((k) => process.env[k] !== undefined)
    .map((k) => `${k}=${Number(process.env[k])} `)
    .join('');
  const script = `${env}node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/${s.name}.guest.js`;
  const run = await runInVm({
    mount: s.mount ?? true,
    command: `cd /krsifs/bpf/obj && ${script}${s.after ? `; s=$?; ${s.after}; exit $s` : ''}`,
    timeoutSec: 600,
    kernel: s.kernel,
  });
  t.comment(`${s.name} ran on kernel ${run.kernel.version} (--kernel ${s.kernel ?? 'stock'}); prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
  for (const m of run.messages) t.comment(`guest: ${m}`);
  if (s.notes) {
    const flags = s.notes.flags.includes('g') ? s.notes.flags : s.notes.flags + 'g';
    for (const m of run.output.matchAll(new RegExp(s.notes.source, flags))) t.comment(m[1] ?? m[0]);
  }
  const results = parseGuestTap(run.output);
  for (const r of results) {
    t.comment(`step ${r.name.split('.')[0]}: ${durationMs(r) ?? '?'} ms`);
    if (r.ok) t.pass(r.name);
    else t.fail(r.notPassed ? `${r.name} (${r.notPassed})` : r.name, { diagnostic: true, guest: r.diag });
  }
  t.equal(results.length, s.steps, `all ${s.steps} guest steps ran`);
  t.equal(run.exitCode, 0, 'the guest suite exited 0');
  if (run.exitCode !== 0 || results.length !== s.steps) t.comment(run.output.split('\n').slice(-120).join('\n'));
}
