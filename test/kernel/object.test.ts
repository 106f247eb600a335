// lib/kernel/object.ts's own rules, without a kernel: how a verifier log is
// trimmed to its cause, which program libbpf was loading, libbpf's last line, the globals'
// bytes, the license read from the ELF, and an opened object's one load.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeGlobals, failedProgram, libbpfLastLine, licenseOf, logSummary, openObject, splitLines } from '../../lib/kernel/object.js';
import type { GlobalInfo } from '../../lib/kernel/index.js';
import { ensureBpffs } from '../helpers/bpffs.js';

await ensureBpffs();

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');

t.test('a verifier log says why in a line or two, without the statistics', async (t) => {
  const log = splitLines('0: (b7) r0 = 0\n1: (61) r1 = *(u32 *)(r0 +0)\nR0 invalid mem access \'scalar\'\nprocessed 2 insns (limit 1000000)\nverification time 10 usec\n\n');
  t.same(log.length, 5, 'empty lines at the end go');
  t.equal(logSummary(log), "1: (61) r1 = *(u32 *)(r0 +0) R0 invalid mem access 'scalar' (3 lines omitted)");
  t.equal(logSummary(['processed 0 insns']), '', 'nothing but statistics: no cause');
  t.equal(logSummary([]), '');
});

t.test('the program libbpf was loading is the one its log names', async (t) => {
  t.equal(failedProgram("libbpf: prog 'deny_exec': BPF program load failed: Permission denied\n"), 'deny_exec');
  t.equal(failedProgram('libbpf: failed to load object\n'), '');
});

t.test("libbpf's last line: the one that says something, without its prefix", async (t) => {
  const log = "libbpf: elf: skipping unrecognized data section(7) .eh_frame\nlibbpf: prog 'x': failed to find BTF info  \n\nlibbpf: failed to load object 'x.o'\n";
  t.equal(libbpfLastLine(log), "prog 'x': failed to find BTF info", "libbpf's own summary and blank lines are skipped");
  t.equal(libbpfLastLine(''), '', 'an empty log says nothing');
});

t.test('globals become the bytes at their offsets', async (t) => {
  const g = (name: string, kind: GlobalInfo['kind'], size: number, offset = 0, section = '.rodata'): GlobalInfo => ({ name, kind, size, offset, section });
  const all = [g('target', 'string', 8), g('uid', 'uint', 4, 8), g('err', 'int', 2, 12, '.data'), g('pair', 'other', 2, 0, '.bss')];
  const [[s0, o0, b0], [s1, o1, b1], [s2, o2, b2], [, , b3]] = encodeGlobals(all, { target: 'abc', uid: '0x3e8', err: -2, pair: '0xbeef' }) as [string, number, Buffer][];
  t.same([s0, o0, [...b0!]], ['.rodata', 0, [0x61, 0x62, 0x63, 0, 0, 0, 0, 0]], 'a string, NUL-padded to its array');
  t.same([s1, o1, b1!.readUInt32LE(0)], ['.rodata', 8, 1000], 'an unsigned int from 0x');
  t.same([s2, o2, b2!.readInt16LE(0)], ['.data', 12, -2], 'a signed short');
  t.same([...b3!], [0xbe, 0xef], 'raw bytes of a struct');
  t.throws(() => encodeGlobals(all, { uid: '-1' }), { code: 'EINVAL', message: "set global uid: '-1' is not an unsigned integer", details: { global: 'uid', size: 4 } });
  t.throws(() => encodeGlobals(all, { err: 40000 }), { message: 'set global err: 40000 does not fit in a signed 16-bit integer' });
  t.throws(() => encodeGlobals(all, { target: 'abcdefgh' }), { message: 'set global target: value is 8 bytes, more than its capacity of 7 (char[8])' });
  t.throws(() => encodeGlobals(all, { uid: '99999999999999999999' }), { message: "set global uid: '99999999999999999999' is not an unsigned integer" });
});

t.test('the license is read from the ELF', async (t) => {
  t.equal(licenseOf(await readFile(path.join(objDir, 'deny_exec.o'))), 'GPL');
  t.equal(licenseOf(await readFile(path.join(objDir, 'fixtures/non_gpl.o'))), 'Proprietary');
  t.equal(licenseOf(Buffer.alloc(10)), '', 'too short: none');
});

t.test('an opened object loads once, and closes twice without harm', async (t) => {
  const o = await openObject(await readFile(path.join(objDir, 'deny_exec.o')), 'deny_exec.o');
  const pinPaths = { deny_exec: `/sys/fs/bpf/krsifs-object-test-${process.pid}` };
  // EINVAL here (a hook no kernel has) is decided before anything crosses
  await t.rejects(o.loadAndAttach('no_such_hook', { pinPaths }), { code: 'EINVAL' });
  await t.rejects(o.loadAndAttach('bprm_check_security', { pinPaths }), { code: 'EALREADY' }, 'a second call: EALREADY');
  o.close();
  o.close();
});
