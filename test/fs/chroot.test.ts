// A writer in a chroot: its paths resolve inside its root, relative ones from
// its cwd there, and ".." does not climb out through the daemon.
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
  await copyFile(path.join(objDir, 'deny_exec.o'), path.join(root, 'inner.o'));
  t.teardown(async () => {
    await bash(`umount -l ${root}/krsi`);
    await rm(root, { recursive: true, force: true });
  });
  t.equal((await bash(`mount --bind ${d.mountpoint} ${root}/krsi`)).exitCode, 0, 'the mount is visible in the chroot');

  const inChroot = (cmd: string) => bash(`chroot ${root} /bin/sh -c '${cmd}'`);
  const last = async () =>
    (await bash(`cat ${d.mountpoint}/error_log`)).stdout.trimEnd().split('\n').filter((l) => !l.startsWith('    ')).at(-1) ?? '';

  // relative, from the chroot's cwd: found there (it then meets this host's kernel)
  await inChroot('cd /sub/deeper && echo ../../inner.o > /krsi/process_execution');
  t.match(await last(), `"../../inner.o": `, 'the line ran');
  t.notMatch(await last(), /ENOENT/, 'the object was found relative to the cwd inside the chroot');
  t.match(await last(), `(object ${root}/inner.o)`, 'and it is the chroot\'s copy');

  // absolute: inside the chroot, not the daemon's /
  await inChroot('echo /inner.o > /krsi/process_execution');
  t.match(await last(), `(object ${root}/inner.o)`, 'an absolute path is the chroot\'s');
  await inChroot(`echo ${objDir}/deny_exec.o > /krsi/process_execution`);
  t.match(await last(), /ENOENT/, 'a host path does not exist inside the chroot');

  // ".." cannot climb out: /etc/passwd exists on the host (ENOEXEC there), not in the chroot
  await inChroot('cd /sub && echo ../../../../../etc/passwd > /krsi/process_execution');
  t.match(await last(), /"\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd": ENOENT/, 'relative .. stops at the chroot');
  await inChroot('echo /../../etc/passwd > /krsi/process_execution');
  t.match(await last(), /ENOENT/, 'absolute .. stops at the chroot');
  // a symlink inside the chroot pointing at / stays inside too
  await symlink('/', path.join(root, 'sub/up'));
  await inChroot('cd /sub && echo up/etc/passwd > /krsi/process_execution');
  t.match(await last(), /"up\/etc\/passwd": ENOENT/, 'an absolute symlink resolves against the chroot');
});
