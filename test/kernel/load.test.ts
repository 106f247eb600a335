// loadAndAttach(): every refusal has its errno and words; where the kernel
// allows BPF LSM (the VM), the success path; where it does not (this host),
// the kernel's EPERM and the probe's explanation.
import t from 'tap';
import { copyFile, readFile, stat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { linkInfo, loadAndAttach, openPinnedLink, probe, progInfo } from '../../lib/kernel/index.js';
import { fileURLToPath } from 'node:url';

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
  await t.rejects(loadAndAttach(await obj('fixtures/no_program'), 'bprm_check_security'), {
    code: 'EINVAL', message: 'load object: no program in the object',
  }, 'no program');
  await t.rejects(loadAndAttach(denyExec, 'made_up_hook'), {
    code: 'EINVAL', message: /no LSM hook named 'made_up_hook' in this kernel/,
  }, 'a hook the kernel lacks');
  await t.rejects(loadAndAttach(denyExec, 'bad hook/../x'), { code: 'EINVAL' }, 'a hook that is not a name');
  await t.rejects(loadAndAttach(denyExec, 'bprm_check_security', { globals: { nope: 'x' } }), {
    code: 'EINVAL', message: 'set global: no global named nope in object (have: target)', details: { global: 'nope' },
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
  const dir = t.testdir();
  if (!verdict.ok) {
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
    return;
  }

  // A kernel with BPF LSM (the VM suite runs this side).
  const exe = path.join(dir, 'true-copy');
  await copyFile('/usr/bin/true', exe);
  const before = spawnSync(exe);
  t.equal(before.status, 0, 'the copy runs before attach');
  const attached = await loadAndAttach(await obj('deny_exec'), 'bprm_check_security', { globals: { target: exe } });
  t.equal(attached.length, 1, 'one program attached');
  const [a] = attached;
  t.equal(a!.name, 'deny_exec', 'its full name');
  t.ok(a!.progId > 0 && a!.linkId > 0, 'with kernel ids');
  t.equal(a!.link.id, a!.linkId, 'the Link knows its id');
  t.equal(a!.link.attached, true, 'and is attached');
  t.match(await linkInfo(a!.linkId), { id: a!.linkId, progId: a!.progId, type: 'tracing', attachType: 'lsm_mac', hook: 'bprm_check_security' }, 'the kernel agrees: an LSM link on bprm_check_security');
  t.match(await progInfo(a!.progId), { id: a!.progId, name: 'deny_exec', type: 'lsm', hook: 'bprm_check_security', gplCompatible: true }, 'and the program is ours');
  const denied = spawnSync(exe);
  t.match(denied.error, { code: 'EPERM' }, 'exec of the target is denied');
  t.equal(spawnSync('/usr/bin/true').status, 0, 'other programs still run');
  await a!.link.detach();
  t.equal(a!.link.attached, false, 'detached');
  await a!.link.detach();
  t.pass('detach twice is a no-op');
  t.equal(spawnSync(exe).status, 0, 'the target runs again');
  await t.rejects(linkInfo(a!.linkId), { code: 'ENOENT' }, 'the link is gone from the kernel');

  const e = await loadAndAttach(await obj('fixtures/verifier_reject'), 'bprm_check_security').then(() => null, (e: unknown) => e as { errno: number; message: string; verifierLog?: string[] });
  t.ok(e && (e.errno === 13 || e.errno === 22), 'the verifier refuses with EACCES or EINVAL');
  t.match(e?.message, /^load program verifier_reject: .*invalid mem access/, 'the message quotes the log');
  t.ok((e?.verifierLog?.length ?? 0) > 1, 'the whole verifier log is there');
  const g = await loadAndAttach(await obj('fixtures/non_gpl'), 'bprm_check_security').then(() => null, (e: unknown) => e as { errno: number; message: string });
  t.match(g, { message: /^load program non_gpl: / }, 'a non-GPL LSM program is refused');

  const open = await loadAndAttach(await obj('deny_path'), 'file_open', { globals: { target: path.join(dir, 'secret') } });
  t.equal(open.length, 1, 'the hook-agnostic deny_path attaches to file_open');
  t.match(await linkInfo(open[0]!.linkId), { hook: 'file_open' }, 'on file_open');

  // a pin keeps the link; openPinnedLink adopts it; detach unpins and detaches
  const bpffs = await stat('/sys/fs/bpf').then(() => true, () => false);
  if (bpffs) {
    const pin = `/sys/fs/bpf/krsifs-test-${process.pid}-${Date.now()}`;
    await open[0]!.link.pin(pin);
    t.equal(open[0]!.link.pinPath, pin, 'pinned');
    await open[0]!.link.close();
    t.match(await linkInfo(open[0]!.linkId), { id: open[0]!.linkId }, 'closing our fd leaves a pinned link attached');
    const adopted = await openPinnedLink(pin);
    t.equal(adopted.id, open[0]!.linkId, 'openPinnedLink finds the same link');
    t.equal(adopted.name, 'deny_path', 'with the kernel\'s name for the program');
    await adopted.detach();
    t.equal(await stat(pin).then(() => true, () => false), false, 'detach removed the pin');
    await t.rejects(linkInfo(open[0]!.linkId), { code: 'ENOENT' }, 'and the kernel dropped the link');
  } else {
    await open[0]!.link.detach();
  }
});
