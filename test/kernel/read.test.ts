// readObject(): the object's bytes, from the path as the writer sees it.
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { readFile, truncate, writeFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { readObject } from '../../lib/kernel/index.js';
import { fileURLToPath } from 'node:url';

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');

t.test('absolute path of this process', async (t) => {
  const r = await readObject(0, path.join(objDir, 'deny_exec.o'));
  t.equal(r.path, path.join(objDir, 'deny_exec.o'), 'the path as seen');
  t.same(r.data, await readFile(path.join(objDir, 'deny_exec.o')), 'the whole file');
});

t.test('a relative path resolves against the writer\'s cwd', async (t) => {
  const child = spawn('sleep', ['300'], { cwd: objDir, stdio: 'ignore' }); // killed below; alive for the whole test however slow the host
  t.teardown(() => void child.kill());
  await new Promise((resolve) => child.once('spawn', resolve));
  const r = await readObject(child.pid!, 'deny_exec.o');
  t.equal(r.path, path.join(objDir, 'deny_exec.o'), 'found in bpf/obj, the child\'s cwd');
  t.same(r.data, await readFile(path.join(objDir, 'deny_exec.o')), 'same bytes');
  const up = await readObject(child.pid!, '../obj/fixtures/not_lsm.o');
  t.equal(up.path, path.join(objDir, 'fixtures', 'not_lsm.o'), '.. works from the cwd');
  await t.rejects(readObject(0, 'deny_exec.o'), { code: 'ENOENT' }, 'but not from ours');
});

t.test('symlinks are followed', async (t) => {
  const dir = t.testdir();
  await symlink(path.join(objDir, 'deny_open.o'), path.join(dir, 'link.o'));
  const r = await readObject(0, path.join(dir, 'link.o'));
  t.equal(r.path, path.join(objDir, 'deny_open.o'), 'the path is the target\'s');
});

t.test('every bad path has its errno and a message naming it', async (t) => {
  const dir = t.testdir({ 'empty.o': '' });
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = path.join(dir, 'big.o');
  await writeFile(big, '');
  await truncate(big, 64 * 1024 * 1024 + 1); // sparse
  await t.rejects(readObject(0, '/nonexistent/x.o'), { code: 'ENOENT', message: 'read object /nonexistent/x.o: no such file or directory' }, 'missing: ENOENT');
  await t.rejects(readObject(0, '/etc'), { code: 'EISDIR', message: 'read object /etc: is a directory' }, 'directory: EISDIR');
  await t.rejects(readObject(0, fifo), { code: 'ENOEXEC', message: /not a regular file/ }, 'a fifo: ENOEXEC, without blocking');
  await t.rejects(readObject(0, '/dev/null'), { code: 'ENOEXEC', message: /not a regular file/ }, 'a device: ENOEXEC');
  await t.rejects(readObject(0, big), { code: 'E2BIG', message: /64 MiB/ }, 'over 64 MiB: E2BIG');
  await t.rejects(readObject(0, ''), { code: 'ENOENT' }, 'empty path: ENOENT');
  await t.rejects(readObject(2 ** 30, '/etc/passwd'), { code: 'ESRCH', message: /process/ }, 'a process that is gone: ESRCH');
  const empty = await readObject(0, path.join(dir, 'empty.o'));
  t.equal(empty.data.length, 0, 'an empty file reads as empty (inspect refuses it later)');
});
