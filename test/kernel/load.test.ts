// loadAndAttach(): every refusal has its errno and words; where the kernel
// does not allow BPF LSM (this host), the kernel's EPERM and the probe's
// explanation; where it does, the success path of ../vm/fixtures/kernel-steps.ts,
// which the VM suite (test/vm/kernel.test.ts) runs on a real BPF LSM kernel.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { probe } from '../../lib/kernel/index.js';
import { fileURLToPath } from 'node:url';
import { kernelSteps, loadObject as loadAndAttach } from '../vm/fixtures/kernel-steps.js';

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');
/** The bytes of bpf/obj/<name>.o (name may be 'fixtures/x'). */
const obj = (name: string): Promise<Buffer> => readFile(path.join(objDir, `${name}.o`));

const verdict = await probe();

t.test('the probe explains itself', async (t) => {
  t.type(verdict.ok, 'boolean', 'ok is a boolean');
  t.ok(verdict.reason.length > 0, 'a reason in words');
  t.equal(verdict.checks.btf, true, 'this kernel has BTF');
  t.ok(verdict.checks.lsm?.includes('bpf'), 'bpf is an active LSM here');
  t.equal(verdict.checks.bpfLsmActive, true, 'so the check says so');
  t.ok(verdict.checks.load.tried, 'the live load was tried');
  t.type(verdict.checks.lockdown, 'string', 'lockdown state is read');
  if (verdict.ok) {
    t.equal(verdict.checks.load.ok, true, 'the minimal LSM program loaded');
    t.equal(verdict.errno, undefined, 'no errno');
  } else {
    t.equal(verdict.code, 'EPERM', 'this host refuses LSM loads with EPERM');
    t.match(verdict.reason, /this kernel refuses BPF LSM programs/, 'and the reason says so');
    t.match(verdict.fix, /npm run vm/, 'the fix says where to try');
  }
});

t.test('refusals before the kernel: EINVAL naming the problem', async (t) => {
  const denyExec = await obj('deny_exec');
  await t.rejects(loadAndAttach(await obj('deny_open'), 'bprm_check_security'), {
    code: 'EINVAL',
    message: 'load object: program deny_open is for hook file_open (SEC("lsm/file_open")), not for this file\'s hook bprm_check_security',
    details: { program: 'deny_open', hook: 'bprm_check_security' },
  }, 'a program bound to another hook');
  await t.rejects(loadAndAttach(await obj('fixtures/not_lsm'), 'bprm_check_security'), {
    code: 'EINVAL', message: /program count_packets is a socket_filter program/,
  }, 'a non-LSM program in the object');
  await t.rejects(loadAndAttach(await obj('fixtures/companion_only'), 'kernel_read_file'), {
    code: 'EINVAL', message: 'load object: no LSM program in the object (its fentry/fexit companions need one)',
  }, 'companions without an LSM program');
  await t.rejects(loadAndAttach(await obj('fixtures/fmod_ret'), 'kernel_read_file'), {
    code: 'EINVAL', message: /program change_verdict is a tracing program \(SEC\("fmod_ret\/security_kernel_read_file"\)\): .*only LSM programs and fentry\/fexit companions/,
  }, 'fmod_ret is no companion');
  await t.rejects(loadAndAttach(await obj('fixtures/no_program'), 'bprm_check_security'), {
    code: 'EINVAL', message: 'load object: no program in the object',
  }, 'no program');
  await t.rejects(loadAndAttach(denyExec, 'made_up_hook'), {
    code: 'EINVAL', message: /no LSM hook named 'made_up_hook' in this kernel/,
  }, 'a hook the kernel lacks');
  await t.rejects(loadAndAttach(denyExec, 'bad hook/../x'), { code: 'EINVAL' }, 'a hook that is not a name');
  await t.rejects(loadAndAttach(denyExec, 'bprm_check_security', { globals: { nope: 'x' } }), {
    code: 'EINVAL', message: 'set global: no global named nope in object (have: krsi_behaviour, krsi_monitor, krsi_hook, krsi_behaviour_id, target)', details: { global: 'nope' },
  }, 'an unknown global, listing the known ones');
  await t.rejects(loadAndAttach(denyExec, 'bprm_check_security', { globals: { target: 'x'.repeat(256) } }), {
    code: 'EINVAL', message: 'set global target: value is 256 bytes, more than its capacity of 255 (char[256])',
  }, 'a string too long for its array');
  const uid = await obj('deny_exec_uid');
  await t.rejects(loadAndAttach(uid, 'bprm_check_security', { globals: { uid: -1 } }), {
    code: 'EINVAL', message: /set global uid: -1 is negative/,
  }, 'a negative number for an unsigned global');
  await t.rejects(loadAndAttach(uid, 'bprm_check_security', { globals: { uid: 2 ** 32 } }), {
    code: 'EINVAL', message: /set global uid: 4294967296 does not fit in an unsigned 32-bit integer/,
  }, 'out of range');
  await t.rejects(loadAndAttach(uid, 'bprm_check_security', { globals: { uid: '12abc' } }), {
    code: 'EINVAL', message: "set global uid: '12abc' is not an unsigned integer",
  }, 'not a number');
  await t.rejects(loadAndAttach(uid, 'bprm_check_security', { globals: { uid: 1.5 } }), {
    code: 'EINVAL', message: /not an integer/,
  }, 'not an integer');
  await t.rejects(loadAndAttach(Buffer.from('#!/bin/sh\n'), 'bprm_check_security'), {
    code: 'ENOEXEC', message: 'open object: not an ELF file',
  }, 'not an object at all');
});

t.test('the kernel\'s answer', async (t) => {
  if (verdict.ok) {
    // A kernel that loads BPF LSM programs: the success side. These are the
    // steps of the VM suite's kernel.guest.ts (test/vm/kernel.test.ts, part
    // of `npm test`), which runs them on Debian's kernel whatever this host does.
    for (const s of kernelSteps) await t.resolves(s.run(), s.name);
    return;
  }
  // This host: everything valid reaches the kernel, which says EPERM.
  for (const [name, hook, globals] of [
    ['deny_exec', 'bprm_check_security', { target: '/usr/bin/true' }],
    ['deny_exec_uid', 'bprm_check_security', { target: '/usr/bin/true', uid: '0x3e8' }],
    ['deny_open', 'file_open', { target: '/etc/hostname' }],
    ['deny_path', 'file_open', {}],
    ['fixtures/verifier_reject', 'bprm_check_security', {}],
    ['fixtures/non_gpl', 'bprm_check_security', {}],
  ] as const) {
    const prog = name.split('/').pop()!;
    const e = await loadAndAttach(await obj(name), hook, { globals }).then(() => null, (e: unknown) => e);
    t.match(e, {
      code: 'EPERM',
      message: `load program ${prog}: operation not permitted (BPF LSM programs are not permitted on this kernel, even for root: see \`krsifs doctor\`)`,
      details: { program: prog, hook },
    }, `${name} on ${hook}: EPERM, naming the program and the way out`);
  }
});

t.test('a load runs on a thread of its own and holds the process until it has settled', async (t) => {
  // Nothing else keeps this child's loop alive: if the load's thread did not
  // hold it (as a pool worker does), node would exit before the answer came
  // and print nothing. The pin path is not on bpffs: a kernel that loads
  // refuses the pin and rolls the attach back; this host refuses the load.
  const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/kernel/index.js');
  const script = `
    import { readFileSync } from 'node:fs';
    const { openObject } = await import(${JSON.stringify(index)});
    const o = await openObject(readFileSync(${JSON.stringify(path.join(objDir, 'deny_exec.o'))}));
    o.loadAndAttach('bprm_check_security', { globals: { target: '/nonexistent/krsifs-test' }, pinPaths: { deny_exec: '/tmp/krsifs-not-bpffs-pin' } })
      .then(() => console.log('settled: attached'), (e) => console.log('settled: ' + e.code));`;
  const { stdout, status } = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(status, 0, 'the child exits 0');
  t.match(stdout, /^settled: E[A-Z]+\n$/, `the load settled before the process exited (${stdout.trim() || 'nothing printed'})`);
});
