// A mount served by another process looks like a filesystem to real clients:
// mountinfo, ls, cat, nested paths, and the caller seen by the daemon.
import t from 'tap';
import { execa } from 'execa';
import { startDaemon, mountFsType } from './fixtures/daemon.js';

const d = await startDaemon(t, 'mount', 'memfs');
const mp = d.mountpoint;

t.test('the mount is listed with its subtype', async (t) => {
  t.equal(await mountFsType(mp), 'fuse.memfs', 'mountinfo shows fstype fuse.memfs');
});

t.test('ls -l shows modes and owners', async (t) => {
  const { stdout } = await execa('ls', ['-ln', mp]);
  const rows = new Map(
    stdout
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/))
      .map((f) => [f[8], { mode: f[0], uid: f[2], gid: f[3], size: f[4] }]),
  );
  t.same([...rows.keys()].sort(), ['rw', 'slow', 'slow2', 'sub', 'whoami'], 'every entry is listed');
  t.match(rows.get('rw'), { mode: '-rw-------', uid: '0', gid: '0' }, 'rw is 0600 root:root');
  t.match(rows.get('whoami'), { mode: '-r--r--r--', uid: '1234', gid: '5678', size: '0' }, 'whoami is 0444 1234:5678, size 0');
  t.match(rows.get('sub'), { mode: 'drwxr-xr-x' }, 'sub is a directory');
});

t.test('a size-0 file is read in full by cat, and sees its reader', async (t) => {
  const { stdout } = await execa('sh', ['-c', 'echo $$; exec cat whoami'], { cwd: mp });
  const [pid, line] = stdout.split('\n');
  t.equal(line, `pid=${pid} uid=0 gid=0`, "cat prints its own pid, uid and gid");
});

t.test('nested paths resolve', async (t) => {
  const { stdout } = await execa('cat', [`${mp}/sub/deep`]);
  t.equal(stdout, 'deep', 'cat sub/deep reads the nested file');
  await t.rejects(execa('cat', [`${mp}/sub/nothere`]), { name: 'ExecaError', stderr: /No such file or directory/ }, 'a missing name is ENOENT');
});

t.test('the namespace is fixed', async (t) => {
  await t.rejects(execa('sh', ['-c', `: > ${mp}/new`]), { name: 'ExecaError', stderr: /Permission denied/ }, 'creating a file is EACCES');
  await t.rejects(execa('mkdir', [`${mp}/newdir`]), { name: 'ExecaError', stderr: /Operation not permitted/ }, 'mkdir is EPERM');
  await t.rejects(execa('chmod', ['0666', `${mp}/rw`]), { name: 'ExecaError', stderr: /Operation not permitted/ }, 'chmod is EPERM');
  await t.resolves(execa('touch', [`${mp}/rw`]), 'touch (a time change) is accepted');
});
