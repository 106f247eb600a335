// Interop on this host: programs other loaders loaded (pins, ids, a writer's
// fd) and globals in .data/.bss, up to the kernel's answer. LSM programs do
// not load here (EPERM), socket filters do: a pinned socket filter is the
// "loaded program that is not LSM" every check must refuse. The positive side
// (bpftool-pinned LSM programs attached and enforcing) is test/vm/interop.test.ts.
import t from 'tap';
import { loadObject as loadAndAttach } from '../vm/fixtures/kernel-steps.js';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { attachProgram, probe, progInfo, readObject } from '../../lib/kernel/index.js';
import { credentialsOf } from '../../lib/kernel/proc.js';
import { ensureBpffs } from '../helpers/bpffs.js';

await ensureBpffs();

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');
const obj = (name: string): Promise<Buffer> => readFile(path.join(objDir, `${name}.o`));
const verdict = await probe();

const dir = `/sys/fs/bpf/krsifs-interop-test-${process.pid}`;
await mkdir(dir, { recursive: true });
t.teardown(() => rm(dir, { recursive: true, force: true }));
const progPin = `${dir}/sockprog`;
const mapPin = `${dir}/somemap`;
execFileSync('bpftool', ['prog', 'load', path.join(objDir, 'fixtures/sock_only.o'), progPin]);
execFileSync('bpftool', ['map', 'create', mapPin, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'somemap']);
const sockId = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'pinned', progPin], { encoding: 'utf8' })) as { id: number }).id;

t.test('globals in .data and .bss: set before load with the .rodata checks; 0xHEX raw bytes', async (t) => {
  const bss = await obj('fixtures/bss_settings');
  const hook = 'bprm_check_security';
  const target = Buffer.alloc(256);
  target.write('/tmp/victim');
  const ok = { deny: 1, target: '/tmp/victim', err: '13', pair: '0x010000004953524b' };
  let n = 0;
  const refused = (globals: Record<string, string | number>) =>
    loadAndAttach(bss, hook, { globals, pinPaths: { bss_settings: `${dir}/bss${n++}` } }).then(() => null, (e: unknown) => e);
  for (const globals of [ok, { ...ok, target: `0x${target.toString('hex')}` }, { deny: '0x1' }]) {
    const e = await refused(globals);
    if (verdict.ok) {
      t.ok(e === null, `${JSON.stringify(globals).slice(0, 60)}: attached`);
    } else {
      t.match(e, { code: 'EPERM', message: /load program bss_settings: operation not permitted/ },
        `${JSON.stringify(globals).slice(0, 60)}: every value taken, the load reached the kernel (EPERM here)`);
    }
  }
  await t.rejects(loadAndAttach(bss, hook, { globals: { nope: 1 } }), {
    code: 'EINVAL', message: 'set global: no global named nope in object (have: deny, target, pair, err)',
  }, 'unknown: EINVAL listing .bss and .data globals');
  await t.rejects(loadAndAttach(bss, hook, { globals: { err: 2 ** 31 } }), {
    code: 'EINVAL', message: 'set global err: 2147483648 does not fit in a signed 32-bit integer',
  }, '.data int out of range: the .rodata range check');
  await t.rejects(loadAndAttach(bss, hook, { globals: { deny: 'yes' } }), {
    code: 'EINVAL', message: "set global deny: 'yes' is not an integer",
  }, '.bss int: not a number');
  await t.rejects(loadAndAttach(bss, hook, { globals: { target: 'x'.repeat(256) } }), {
    code: 'EINVAL', message: 'set global target: value is 256 bytes, more than its capacity of 255 (char[256])',
  }, '.bss char array: too long');
  await t.rejects(loadAndAttach(bss, hook, { globals: { pair: '0x01' } }), {
    code: 'EINVAL', message: 'set global pair: 0x value is 1 bytes, the global is 8 (raw bytes must be its exact size)',
  }, 'raw bytes of the wrong size: EINVAL');
  await t.rejects(loadAndAttach(bss, hook, { globals: { pair: '5' } }), {
    code: 'EINVAL', message: 'set global pair: a 8-byte global that is neither an integer nor a char array takes raw bytes only: pair=0x followed by 16 hex digits',
  }, 'a struct without 0x: EINVAL saying how');
  await t.rejects(loadAndAttach(bss, hook, { globals: { pair: '0x01000000495352zz' } }), { code: 'EINVAL' }, 'not hex: EINVAL');
});

t.test('a pinned program is opened as the writer; a non-LSM one is refused', async (t) => {
  const me = await credentialsOf(process.pid);
  const r = await readObject(me, progPin);
  t.same(r.program, { id: sockId, source: `pinned:${progPin}` }, 'a pin names a loaded program: its id and where it came from');
  t.equal(r.data.length, 0, 'nothing is read from it');
  t.match(await progInfo(sockId), { type: 'socket_filter', hook: null }, 'the kernel says what it is');
  await t.rejects(attachProgram(sockId, 'bprm_check_security', `${dir}/never`), {
    code: 'EINVAL', message: 'attach program ' + sockId + ' (sock_only): a socket_filter program, not an LSM program',
  }, 'a non-LSM program: EINVAL, nothing pinned');
  t.throws(() => execFileSync('ls', [`${dir}/never`], { stdio: 'ignore' }), 'no pin was made');
  await t.rejects(attachProgram(2 ** 31 - 5, 'bprm_check_security', `${dir}/never`), {
    code: 'ENOENT', message: /no loaded program has this id/,
  }, 'an id nothing has: ENOENT');
  await t.rejects(readObject(me, mapPin), { code: 'ENOEXEC', message: /a pinned map on bpffs .*not read/ }, 'a pinned map: ENOEXEC as before');

  // the writer's rights: nobody, without capabilities, may not open a root 0600 pin
  await chmod(progPin, 0o600);
  const nobody = { ...me, uid: 65534, gid: 65534, fsuid: 65534, fsgid: 65534, groups: [], capEff: 0n };
  await t.rejects(readObject(nobody, progPin), { code: 'EACCES', message: /open the pin as the writer: permission denied/ },
    'a pin the writer may not open: EACCES');
  // read-only is not enough: the kernel opens a program's pin read-write
  await chmod(progPin, 0o644);
  await t.rejects(readObject({ ...me, fsuid: 65534, fsgid: 65534, groups: [], capEff: 0n }, progPin), { code: 'EACCES' },
    'a pin the writer may only read: EACCES');
});

t.test('/proc/self/fd/N is the writer\'s fd: anything but an LSM program keeps EXDEV', async (t) => {
  // a writer holding a socket filter's fd (BPF_OBJ_GET on the pin) as its fd 3
  const py = `
import ctypes, os, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
path = ctypes.create_string_buffer(sys.argv[1].encode())
attr = ctypes.create_string_buffer(struct.pack('QII', ctypes.addressof(path), 0, 0) + b'\\0' * 112)
fd = libc.syscall(321, 7, attr, 128)
if fd < 0: sys.exit(1)
if fd != 3: os.dup2(fd, 3)
print(3, flush=True)
time.sleep(30)
`;
  const child = spawn('python3', ['-c', py, progPin], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill());
  const line = await new Promise<string>((resolve) => child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim())));
  t.equal(line, '3', 'the writer holds the program at fd 3');
  const writer = await credentialsOf(child.pid!);
  await t.rejects(readObject(writer, '/proc/self/fd/3'), { code: 'EXDEV' }, 'a socket filter at the writer\'s fd 3: EXDEV, as before');
  await t.rejects(readObject(writer, '/proc/self/fd/0'), { code: 'EXDEV' }, 'a non-BPF fd: EXDEV');
  await t.rejects(readObject(writer, '/proc/self/fd/77'), { code: 'ENOENT' }, 'an fd nobody has: ENOENT, as before');
});
