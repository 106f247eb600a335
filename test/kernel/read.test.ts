// readObject(): the object's bytes, from the path as the writer sees it,
// read with the writer's rights, on a thread of its own, within a bound.
import t from 'tap';
import { ownedCopy } from '../helpers/daemon.js';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, rmdir, truncate, writeFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { objectReadLimits, objectReadsInFlight, readObject } from '../../lib/kernel/index.js';
import { CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_MAC_ADMIN, credentialsOf, type Credentials } from '../../lib/kernel/proc.js';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const objDir = path.resolve(here, '../../../bpf/obj');
const obj = path.join(objDir, 'deny_exec.o');
const bit = (cap: number) => 1n << BigInt(cap);

t.test('absolute path of this process', async (t) => {
  const r = await readObject(await credentialsOf(process.pid), path.join(objDir, 'deny_exec.o'));
  t.equal(r.path, path.join(objDir, 'deny_exec.o'), 'the path as seen');
  t.same(r.data, await readFile(path.join(objDir, 'deny_exec.o')), 'the whole file');
});

t.test('a relative path resolves against the writer\'s cwd', async (t) => {
  const child = spawn('sleep', ['300'], { cwd: objDir, stdio: 'ignore' }); // killed below; alive for the whole test however slow the host
  t.teardown(() => void child.kill());
  await new Promise((resolve) => child.once('spawn', resolve));
  const r = await readObject(await credentialsOf(child.pid!), 'deny_exec.o');
  t.equal(r.path, path.join(objDir, 'deny_exec.o'), 'found in bpf/obj, the child\'s cwd');
  t.same(r.data, await readFile(path.join(objDir, 'deny_exec.o')), 'same bytes');
  const up = await readObject(await credentialsOf(child.pid!), '../obj/fixtures/not_lsm.o');
  t.equal(up.path, path.join(objDir, 'fixtures', 'not_lsm.o'), '.. works from the cwd');
  await t.rejects(readObject(await credentialsOf(process.pid), 'deny_exec.o'), { code: 'ENOENT' }, 'but not from ours');
});

t.test('symlinks are followed', async (t) => {
  const dir = t.testdir();
  await symlink(path.join(objDir, 'deny_open.o'), path.join(dir, 'link.o'));
  const r = await readObject(await credentialsOf(process.pid), path.join(dir, 'link.o'));
  t.equal(r.path, path.join(objDir, 'deny_open.o'), 'the path is the target\'s');
});

t.test('every bad path has its errno and a message naming it', async (t) => {
  const dir = t.testdir({ 'empty.o': '' });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = path.join(dir, 'big.o');
  await writeFile(big, '');
  await truncate(big, 64 * 1024 * 1024 + 1); // sparse
  await t.rejects(readObject(await credentialsOf(process.pid), '/nonexistent/x.o'), { code: 'ENOENT', message: 'read object /nonexistent/x.o: no such file or directory' }, 'missing: ENOENT');
  await t.rejects(readObject(await credentialsOf(process.pid), '/etc'), { code: 'EISDIR', message: 'read object /etc: is a directory' }, 'directory: EISDIR');
  await t.rejects(readObject(await credentialsOf(process.pid), fifo), { code: 'ENOEXEC', message: /not a regular file/ }, 'a fifo: ENOEXEC, without blocking');
  await t.rejects(readObject(await credentialsOf(process.pid), '/dev/null'), { code: 'ENOEXEC', message: /not a regular file/ }, 'a device: ENOEXEC');
  await t.rejects(readObject(await credentialsOf(process.pid), big), { code: 'E2BIG', message: /64 MiB/ }, 'over 64 MiB: E2BIG');
  await t.rejects(readObject(await credentialsOf(process.pid), ''), { code: 'ENOENT' }, 'empty path: ENOENT');
  await t.rejects(readObject({ ...(await credentialsOf(process.pid)), pid: 2 ** 30 }, '/etc/passwd'), { code: 'ESRCH', message: /process/ }, 'a process that is gone: ESRCH');
  await t.rejects(readObject(await credentialsOf(process.pid), path.join(dir, 'empty.o')), {
    code: 'ENOEXEC', message: 'open object: not an ELF file', details: { object: path.join(dir, 'empty.o') },
  }, 'an empty file is read, and libbpf\'s open refuses it on the reader thread');
});

t.test('magic links and /proc are refused, relative or absolute; kernel interface files are not read', async (t) => {
  const me = await credentialsOf(process.pid);
  const child = spawn('sleep', ['5'], { cwd: '/', stdio: 'ignore' });
  t.teardown(() => void child.kill());
  await new Promise((resolve) => child.once('spawn', resolve));
  const it = await credentialsOf(child.pid!);
  for (const [who, p] of [
    [it, 'proc/self/environ'],
    [it, `proc/${child.pid}/root${obj}`],
    [me, '/proc/self/environ'],
    [me, '/proc/version'],
    [me, `/proc/${process.pid}/fd/0`],
    [me, '/dev/stdin'],
  ] as const) {
    await t.rejects(readObject(who, p), { code: 'EXDEV', message: /\/proc/ }, `${p}: EXDEV`);
  }
  await t.rejects(readObject(me, '/sys/kernel/btf/vmlinux'), { code: 'ENOEXEC', message: /sysfs, never a BPF object/ }, 'sysfs: ENOEXEC');
});

t.test("the writer's file access rights, not the daemon's", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-read-rights-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const put = (name: string, mode: number, uid: number, gid: number) => ownedCopy(obj, dir, name, mode, uid, gid);
  const users = await put('users.o', 0o600, 1000, 1000);
  const roots = await put('roots.o', 0o600, 0, 0);
  const group = await put('group.o', 0o640, 0, 4242);
  await mkdir(path.join(dir, 'locked'), { mode: 0o700 });
  const locked = await put('locked/inner.o', 0o644, 0, 0);
  const me = await credentialsOf(process.pid);
  const as = (c: Partial<Credentials>): Credentials => ({ ...me, ...c });
  const root = (capEff: bigint) => as({ capEff });
  const user = (groups: number[], capEff = bit(CAP_MAC_ADMIN)) => as({ fsuid: 1000, fsgid: 1000, groups, capEff });

  await t.rejects(readObject(root(bit(CAP_MAC_ADMIN)), users), { code: 'EACCES', message: /permission denied/ }, "fsuid 0 without CAP_DAC_*: another user's 0600 file");
  t.ok((await readObject(root(bit(CAP_MAC_ADMIN) | bit(CAP_DAC_READ_SEARCH)), users)).data.length > 0, 'with CAP_DAC_READ_SEARCH: read');
  t.ok((await readObject(root(bit(CAP_MAC_ADMIN) | bit(CAP_DAC_OVERRIDE)), users)).data.length > 0, 'with CAP_DAC_OVERRIDE: read');
  t.ok((await readObject(root(0n), roots)).data.length > 0, 'its own file: read');
  await t.rejects(readObject(user([]), roots), { code: 'EACCES' }, "uid 1000: root's 0600 file");
  await t.rejects(readObject(user([]), locked), { code: 'EACCES' }, 'uid 1000: a file under a 0700 directory');
  await t.rejects(readObject(user([]), path.join(dir, 'locked/missing.o')), { code: 'EACCES' }, 'and a missing one there: the same');
  await t.rejects(readObject(user([]), group), { code: 'EACCES' }, 'uid 1000: a 0640 file of a group it is not in');
  t.ok((await readObject(user([4242]), group)).data.length > 0, 'in that group: read');
  t.ok((await readObject(user([]), users)).data.length > 0, 'uid 1000: its own 0600 file');
  t.ok((await readObject(user([], bit(CAP_DAC_OVERRIDE)), roots)).data.length > 0, 'uid 1000 holding CAP_DAC_OVERRIDE: as it could itself');
  await t.rejects(readObject(as({ inDaemonUserNs: false }), users), { code: 'EACCES' }, 'capabilities of a user namespace of its own count for nothing');

  // the daemon's own rights are untouched: each read changed only its own thread
  t.equal(process.geteuid!(), 0, 'euid still 0');
  t.same(await credentialsOf(process.pid), me, 'fsuid, groups, capabilities of this process unchanged');
  t.ok((await readFile(users)).length > 0, 'and it still reads any file itself');
});

t.test('bad credentials never cross to the addon', async (t) => {
  const me = await credentialsOf(process.pid);
  await t.rejects(readObject({ ...me, fsuid: -1 }, obj), TypeError, 'fsuid -1');
  await t.rejects(readObject({ ...me, fsgid: 2 ** 32 }, obj), TypeError, 'fsgid out of range');
  await t.rejects(readObject({ ...me, groups: [1.5] }, obj), TypeError, 'a gid that is no integer');
  await t.rejects(readObject({ ...me, capEff: 1n << 64n }, obj), TypeError, 'capEff over 64 bits');
  await t.rejects(readObject({ ...me, capEff: 5 as unknown as bigint }, obj), TypeError, 'capEff not a bigint');
  await t.rejects(readObject({ ...me, pid: 0 }, obj), { code: 'ESRCH' }, 'pid 0: ESRCH');
});

/** A FUSE mount whose daemon is SIGSTOPped: every new lookup there waits. */
async function stalledMount(t: { teardown(fn: () => unknown): void }): Promise<{ mnt: string; fixture: ChildProcess }> {
  const mnt = await mkdtemp(path.join(os.tmpdir(), 'krsifs-read-stalled-'));
  const fixture = spawn(process.execPath, [path.resolve(here, '../fuse/fixtures/memfs-daemon.js'), mnt, 'stalled'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    fixture.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    fixture.once('exit', (c) => reject(new Error(`fixture exited ${c}`)));
  });
  t.teardown(async () => {
    fixture.kill('SIGKILL');
    try {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
    } catch {
      /* gone with its daemon */
    }
    await rmdir(mnt).catch(() => {});
  });
  fixture.kill('SIGSTOP');
  return { mnt, fixture };
}

t.test('a file on a stalled filesystem: bounded wait, abort, limits, and the pool stays free', async (t) => {
  const { mnt, fixture } = await stalledMount(t);
  const me = await credentialsOf(process.pid);
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => void child.kill());
  await new Promise((resolve) => child.once('spawn', resolve));
  const other = await credentialsOf(child.pid!);

  let start = Date.now();
  await t.rejects(readObject(me, `${mnt}/a.o`, undefined, { timeoutMs: 300 }), {
    code: 'ETIMEDOUT',
    message: `read object ${mnt}/a.o: the filesystem holding ${mnt}/a.o did not answer in 0.3 s; nothing was done`,
  }, 'ETIMEDOUT');
  t.ok(Date.now() - start < 1500, `after the bound (${Date.now() - start} ms)`);

  const ac = new AbortController();
  const aborted = readObject(me, `${mnt}/b.o`, ac.signal, { timeoutMs: 60_000 });
  setTimeout(() => ac.abort(), 100);
  start = Date.now();
  await t.rejects(aborted, { code: 'EINTR', message: /killed/ }, 'abort: EINTR');
  t.ok(Date.now() - start < 1000, `at once (${Date.now() - start} ms)`);
  const pre = new AbortController();
  pre.abort();
  await t.rejects(readObject(me, obj, pre.signal), { code: 'EINTR' }, 'already aborted: EINTR, nothing read');

  // the abandoned reads still count: two of this process are stuck
  t.equal(objectReadsInFlight().byWriter.get(process.pid), 2, 'both abandoned reads still count for this process');
  const saved = { ...objectReadLimits };
  t.teardown(() => Object.assign(objectReadLimits, saved));
  objectReadLimits.perWriter = 2;
  await t.rejects(readObject(me, obj), { errno: os.constants.errno.EAGAIN, message: /process \d+ already has 2 object reads in flight \(at most 2\)/ }, 'over the per-writer limit: EAGAIN');
  t.ok((await readObject(other, obj)).data.length > 0, 'another process still reads');
  objectReadLimits.total = objectReadsInFlight().total;
  await t.rejects(readObject(other, obj), { errno: os.constants.errno.EAGAIN, message: /object reads are in flight \(at most/ }, 'over the global limit: EAGAIN');
  Object.assign(objectReadLimits, saved);

  // more stuck readers than libuv has pool threads (2 + 4): the pool is untouched
  const stuck = ['c', 'd', 'e', 'f'].map((n) => readObject(other, `${mnt}/${n}.o`, undefined, { timeoutMs: 60_000 }).catch((e: Error) => e));
  await t.rejects(readObject(other, obj), { errno: os.constants.errno.EAGAIN, message: /at most 4/ }, 'a fifth read of one process: EAGAIN (4 per process)');
  start = Date.now();
  t.ok((await readFile('/etc/hostname')).length > 0, 'fs.readFile (libuv pool) answers');
  t.ok((await readObject(me, obj)).data.length > 0, 'a readable object is still read');
  t.ok(Date.now() - start < 1000, `both at once (${Date.now() - start} ms)`);

  // the stalled filesystem goes away: the stuck reads end, and stop counting
  fixture.kill('SIGKILL');
  const ended = await Promise.all(stuck);
  t.ok(ended.every((e) => e instanceof Error && /ENOTCONN|ECONNABORTED|EIO|ENOENT/.test((e as { code?: string }).code ?? '')), `the waiting reads fail with the mount's errno (${ended.map((e) => (e as { code?: string }).code).join(', ')})`);
  for (let i = 0; i < 50 && objectReadsInFlight().total > 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(objectReadsInFlight().total, 0, 'no read in flight any more: the abandoned ones ended too');
});
