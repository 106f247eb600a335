// A writer in a chroot: its paths resolve inside its root, relative ones from
// its cwd there, and ".." does not climb out through the daemon. Every write
// is checked twice: the writer's own exit status and errno, and the one
// error_log entry it left (error_log is cleared before each write, so a stale
// entry cannot answer for it).
import t from 'tap';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanup, objDir, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

t.test('paths written from a chroot resolve inside it', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const root = await mkdtemp(path.join(os.tmpdir(), 'krsifs-chroot-'));
  await mkdir(path.join(root, 'bin'));
  await mkdir(path.join(root, 'sub/deeper'), { recursive: true });
  await mkdir(path.join(root, 'krsi'));
  await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
  await symlink('busybox', path.join(root, 'bin/sh'));
  // An object that is found, read and inspected, and then refused the same
  // way on every kernel (EINVAL: it holds a socket filter), so the answer
  // says it was this file without anything ever being attached.
  await copyFile(path.join(objDir, 'fixtures/not_lsm.o'), path.join(root, 'inner.o'));
  t.teardown(async () => {
    await bash(`umount -l ${root}/krsi`);
    await rm(root, { recursive: true, force: true });
  });
  t.equal((await bash(`mount --bind ${d.mountpoint} ${root}/krsi`)).exitCode, 0, 'the mount is visible in the chroot');

  const words: Record<string, string> = { ENOENT: 'No such file or directory', EINVAL: 'Invalid argument' };
  /** Write `line` to process_execution from `cwd` in the chroot; return its error_log entry after checking status and errno. */
  const writeInChroot = async (cwd: string, line: string, code: 'ENOENT' | 'EINVAL', what: string): Promise<string> => {
    t.equal((await bash(`: > ${d.mountpoint}/error_log`)).exitCode, 0, `${what}: error_log cleared`);
    const r = await bash(`chroot ${root} /bin/sh -c 'cd ${cwd} && echo ${line} > /krsi/process_execution'`);
    t.equal(r.exitCode, 1, `${what}: the write fails`);
    t.match(r.stderr, `write error: ${words[code]}`, `${what}: with ${code}`);
    const log = (await bash(`cat ${d.mountpoint}/error_log`)).stdout.trimEnd().split('\n').filter((l) => !l.startsWith('    '));
    t.equal(log.length, 1, `${what}: one error_log entry`);
    const entry = log[0] ?? '';
    t.match(entry, ` process_execution: ${JSON.stringify(line)}: ${code} (`, `${what}: the entry is this write's`);
    return entry;
  };

  // relative, from the chroot's cwd: found there
  let e = await writeInChroot('/sub/deeper', '../../inner.o', 'EINVAL', 'relative from the chroot\'s cwd');
  t.match(e, /is a socket_filter program/, 'the object was found relative to the cwd inside the chroot, and read');
  t.match(e, `: attach ${root}/inner.o: `, 'and it is the chroot\'s copy');

  // absolute: inside the chroot, not the daemon's /
  e = await writeInChroot('/', '/inner.o', 'EINVAL', 'absolute');
  t.match(e, `: attach ${root}/inner.o: `, 'an absolute path is the chroot\'s');
  // the host's copy of the same object: not visible from the chroot
  await writeInChroot('/', `${objDir}/fixtures/not_lsm.o`, 'ENOENT', 'a host path');

  // ".." cannot climb out: the object exists on the host (EINVAL there), not in the chroot
  const up = path.relative('/', objDir);
  await writeInChroot('/sub', `../../../../../../../../${up}/fixtures/not_lsm.o`, 'ENOENT', 'relative .. stops at the chroot');
  await writeInChroot('/', `/../../../../${up}/fixtures/not_lsm.o`, 'ENOENT', 'absolute .. stops at the chroot');
  // a symlink inside the chroot pointing at / stays inside too
  await symlink('/', path.join(root, 'sub/up'));
  await writeInChroot('/sub', `up/${up}/fixtures/not_lsm.o`, 'ENOENT', 'an absolute symlink resolves against the chroot');
  // and the same symlink reaches the chroot's own copy
  e = await writeInChroot('/sub', 'up/inner.o', 'EINVAL', 'a symlink to the chroot\'s /');
  t.match(e, `: attach ${root}/inner.o: `, 'which is the chroot\'s copy');
});
