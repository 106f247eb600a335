// FUSE-level faults: the mount busy at stop, a lazy unmount behind the
// daemon's back, clients holding files when the daemon dies. Clean recovery,
// no stuck processes.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cleanup, isMounted, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

function exitOf(p: ReturnType<typeof spawn>, ms: number): Promise<number | string | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

t.test('a busy mount point at stop: the daemon still exits 0, the busy process is not stuck', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // a process whose cwd is inside the mount, holding a file open
  const busy = spawn('bash', ['-c', 'exec 3<process_execution; sleep 30'], { cwd: d.mountpoint, stdio: 'ignore' });
  t.teardown(() => busy.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 300));
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'the daemon exits 0');
  t.notOk(await isMounted(d.mountpoint), 'the mount is detached (lazily)');
  busy.kill('SIGTERM');
  t.equal(await exitOf(busy, 5000), 'SIGTERM', 'the busy process dies when asked, it is not stuck in the kernel');
});

t.test('umount -l behind the daemon\'s back: it notices and exits 0; a new daemon mounts', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const r = await bash(`umount -l ${d.mountpoint}`);
  t.equal(r.exitCode, 0);
  const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
  t.equal(code, 0, 'exited 0');
  t.match(d.log(), /msg="unmounted behind our back; exiting"/);
  const again = await startDaemon({ mountpoint: d.mountpoint });
  t.teardown(() => cleanup(again));
  t.equal((await bash(`cat ${again.mountpoint}/process_execution`)).exitCode, 0, 'a new daemon serves the same place');
});

t.test('clients holding files when the daemon is SIGKILLed get ENOTCONN, not a hang', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // a writer with a half-written line, and a reader, both still open
  const holder = spawn(
    'bash',
    ['-c', `exec 3>${d.mountpoint}/file_open 4<${d.mountpoint}/hooks; printf '/nonexistent/half' >&3; sleep 2; cat <&4; echo 'x.o' >&3; echo done`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  holder.stdout!.on('data', (b) => (out += b));
  holder.stderr!.on('data', (b) => (out += b));
  await new Promise((r) => setTimeout(r, 500));
  d.proc.kill('SIGKILL');
  await d.exited;
  t.equal(await exitOf(holder, 10_000), 0, 'the client finishes on its own');
  t.match(out, /Transport endpoint is not connected/, 'and was told why');
  t.match(out, /done/);
});
