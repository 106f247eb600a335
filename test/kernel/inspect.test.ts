// The facts of every object in bpf/, read when libbpf opens it (openObject,
// and readObject on its reader thread), without loading.
import t from 'tap';
import { openObject, readObject } from '../../lib/kernel/index.js';
import type { ObjectInfo } from '../../lib/kernel/index.js';
import { credentialsOf } from '../../lib/kernel/proc.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');
/** The bytes of bpf/obj/<name>.o (name may be 'fixtures/x'). */
const obj = (name: string): Promise<Buffer> => readFile(path.join(objDir, `${name}.o`));

/** The facts of the object, globals without their offsets (checked on their own below); the object closed. */
async function inspect(data: Buffer, name?: string): Promise<Omit<ObjectInfo, 'globals'> & { globals: Omit<ObjectInfo['globals'][number], 'offset'>[] }> {
  const o = await openObject(data, name);
  o.close();
  o.close(); // twice is a no-op
  return { ...o.facts, globals: o.facts.globals.map(({ offset: _, ...g }) => g) };
}

const target = { name: 'target', size: 256, section: '.rodata', kind: 'string' };
/** What bpf/krsi_events.h and krsi_verdict.h declare (every shipped policy includes them): krsifs sets these at load. */
const krsifsGlobals = [
  { name: 'krsi_behaviour', size: 32, section: '.rodata', kind: 'string' },
  { name: 'krsi_monitor', size: 4, section: '.rodata', kind: 'uint' },
  { name: 'krsi_hook', size: 32, section: '.rodata', kind: 'string' },
  { name: 'krsi_behaviour_id', size: 8, section: '.rodata', kind: 'uint' },
];

t.test('deny_exec: one hook-agnostic LSM program and its target', async (t) => {
  const info = await inspect(await obj('deny_exec'), 'deny_exec');
  t.equal(info.name, 'deny_exec', 'the object takes the name given');
  t.equal(info.license, 'GPL', 'the license section is read');
  t.same(info.programs, [
    { name: 'deny_exec', section: 'lsm', type: 'lsm', expectedAttachType: 'lsm_mac', isLsm: true, hook: null, sleepable: false, instructions: info.programs[0]?.instructions },
  ], 'one plain SEC("lsm") program with no hook of its own');
  t.ok((info.programs[0]?.instructions ?? 0) > 0, 'it has instructions');
  t.same(info.globals, [...krsifsGlobals, target], 'its own global is the const volatile target, after krsifs\'s');
  t.match(info.maps.filter((m) => m.internal), [{ name: /\.rodata$/, type: 'array', internal: true, maxEntries: 1 }], 'libbpf made a .rodata map');
  t.same(info.maps.filter((m) => !m.internal).map((m) => m.name), ['krsi_events', 'krsi_lost', 'krsi_stats', 'krsi_reported'], 'and the maps of the headers');
});

t.test('deny_exec_uid: a second exec program with a string and an integer global', async (t) => {
  const info = await inspect(await obj('deny_exec_uid'));
  t.match(info.programs, [{ name: 'deny_exec_uid', section: 'lsm', isLsm: true, hook: null }], 'hook-agnostic');
  t.equal(info.programs.length, 1, 'one program');
  t.same(info.globals, [...krsifsGlobals, target, { name: 'uid', size: 4, section: '.rodata', kind: 'uint' }], 'target and uid');
});

t.test('deny_open: an LSM program bound to file_open by its section', async (t) => {
  const info = await inspect(await obj('deny_open'));
  t.match(info.programs, [{ name: 'deny_open', section: 'lsm/file_open', type: 'lsm', isLsm: true, hook: 'file_open', sleepable: false }], 'hook from SEC("lsm/file_open")');
  t.same(info.globals, [...krsifsGlobals, target], 'target');
});

t.test('deny_path: the hook-agnostic file_open policy', async (t) => {
  const info = await inspect(await obj('deny_path'));
  t.match(info.programs, [{ name: 'deny_path', section: 'lsm', isLsm: true, hook: null }], 'no hook in the object');
  t.same(info.globals, [...krsifsGlobals, target], 'target');
});

t.test('fixtures', async (t) => {
  const notLsm = await inspect(await obj('fixtures/not_lsm'));
  t.same(notLsm.programs.map((p) => [p.name, p.section, p.type, p.isLsm, p.hook, p.expectedAttachType]), [
    ['allow_exec', 'lsm', 'lsm', true, null, 'lsm_mac'],
    ['count_packets', 'socket', 'socket_filter', false, null, null],
  ], 'not_lsm holds an LSM program and a socket filter');
  t.same(notLsm.globals, [], 'no globals (the license is not one)');

  const nonGpl = await inspect(await obj('fixtures/non_gpl'));
  t.equal(nonGpl.license, 'Proprietary', 'non_gpl reports its license');
  t.match(nonGpl.programs, [{ name: 'non_gpl', isLsm: true }], 'and its LSM program');

  const reject = await inspect(await obj('fixtures/verifier_reject'));
  t.match(reject.programs, [{ name: 'verifier_reject', section: 'lsm', isLsm: true }], 'verifier_reject opens fine');

  const none = await inspect(await obj('fixtures/no_program'));
  t.same(none.programs, [], 'no_program has no program');
  t.same(none.globals, [{ name: 'unused', size: 4, section: '.rodata', kind: 'int' }], 'a signed int global');
});

t.test('sleepable sections are reported', async (t) => {
  const info = await inspect(await obj('fixtures/sleepable'));
  t.same(info.programs.map((p) => [p.name, p.section, p.isLsm, p.hook, p.sleepable]), [
    ['sleepy_any', 'lsm.s', true, null, true],
    ['sleepy_open', 'lsm.s/file_open', true, 'file_open', true],
  ], 'lsm.s is sleepable, with or without a hook');
});

t.test('globals carry their offsets in their section', async (t) => {
  const o = await openObject(await obj('deny_exec_uid'));
  o.close();
  const rodata = o.facts.globals.filter((g) => g.section === '.rodata');
  t.ok(rodata.every((g, i) => i === 0 || g.offset >= rodata[i - 1]!.offset + rodata[i - 1]!.size), 'in order, without overlap');
  t.equal(rodata[0]?.offset, 0, 'the first at 0');
});

t.test('readObject opens what it read: the same facts in the same round trip', async (t) => {
  const me = await credentialsOf(process.pid);
  const file = path.join(objDir, 'deny_exec.o');
  const r = await readObject(me, file);
  t.ok(r.object, 'an opened object');
  t.same(r.object!.facts, (await openObject(r.data, 'deny_exec.o')).facts, 'as openObject gives them, named by the file');
  t.equal(r.object!.facts.name, 'deny_exec.o', 'libbpf named it after the file (the prefix of its internal maps)');
  r.object!.close();
  await t.rejects(readObject(me, '/etc/passwd'), { code: 'ENOEXEC', message: 'open object: not an ELF file', details: { object: '/etc/passwd' } },
    'a file that is no object: ENOEXEC naming it');
});

t.test('what is not a BPF object is refused with ENOEXEC and says why', async (t) => {
  await t.rejects(inspect(Buffer.from('hello, world\n')), { code: 'ENOEXEC', errno: 8, message: 'open object: not an ELF file' }, 'text');
  await t.rejects(inspect(Buffer.alloc(0)), { code: 'ENOEXEC', message: 'open object: not an ELF file' }, 'empty');
  await t.rejects(inspect(await readFile('/bin/true')), { code: 'ENOEXEC', message: 'open object: ELF but not a BPF object (machine x86-64)' }, '/bin/true');
  await t.rejects(readObject(await credentialsOf(process.pid), '/bin/true'), { code: 'ENOEXEC', message: 'open object: ELF but not a BPF object (machine x86-64)' }, '/bin/true read');
  const truncated = (await obj('deny_exec')).subarray(0, 200);
  await t.rejects(inspect(truncated), { code: 'ENOEXEC', message: /^open object: malformed BPF object: .*\(libbpf: E[A-Z0-9]+\)$/ }, 'a truncated object is ENOEXEC, with libbpf\'s words');
  // libbpf itself opens an ELF whose machine is EM_NONE (old clang wrote it): the header check refuses it first
  const none = Buffer.from(await obj('deny_exec'));
  none.writeUInt16LE(0, 18);
  await t.rejects(inspect(none), { code: 'ENOEXEC', message: 'open object: ELF but not a BPF object (machine none)' }, 'machine none');
  const shared = Buffer.from(await obj('deny_exec'));
  shared.writeUInt16LE(3, 16); // ET_DYN
  await t.rejects(inspect(shared), { code: 'ENOEXEC', message: 'open object: BPF ELF but not a relocatable object (compile with clang -c)' }, 'not relocatable');
});
