// FUSE-level faults: the mount busy at stop, a lazy unmount behind the
// daemon's back, clients holding files when the daemon dies. Clean recovery,
// no stuck processes.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readlink } from 'node:fs/promises';
import { cleanup, isMounted, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

/**
 * How long a process may take to end before it counts as stuck. A hang guard,
 * not a speed claim: a process stuck on a dead FUSE mount never ends.
 */
const HANG_MS = 30_000;

/** Resolves once fd `fd` of process `pid` is open on `file`; rejects if it never is. */
async function untilOpen(pid: number, fd: number, file: string): Promise<void> {
  const until = Date.now() + HANG_MS;
  while ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== file) {
    if (Date.now() > until) throw new Error(`process ${pid} never had ${file} open as fd ${fd}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

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
  const busy = spawn('bash', ['-c', 'exec 3<process_execution; exec sleep 60'], { cwd: d.mountpoint, stdio: 'ignore' });
  t.teardown(() => busy.kill('SIGKILL'));
  await untilOpen(busy.pid!, 3, `${d.mountpoint}/process_execution`);
  t.equal(await readlink(`/proc/${busy.pid}/cwd`), d.mountpoint, 'the mount is busy: a cwd in it and a file open');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'the daemon exits 0');
  t.notOk(await isMounted(d.mountpoint), 'the mount is detached (lazily)');
  busy.kill('SIGTERM');
  t.equal(await exitOf(busy, HANG_MS), 'SIGTERM', 'the busy process dies when asked, it is not stuck in the kernel');
});

t.test('umount -l behind the daemon\'s back: it notices and exits 0; a new daemon mounts', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const r = await bash(`umount -l ${d.mountpoint}`);
  t.equal(r.exitCode, 0);
  const code = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), HANG_MS).unref())]);
  t.equal(code, 0, 'exited 0');
  t.match(d.log(), /msg="unmounted behind our back; exiting"/);
  const again = await startDaemon({ mountpoint: d.mountpoint });
  t.teardown(() => cleanup(again));
  t.equal((await bash(`cat ${again.mountpoint}/process_execution`)).exitCode, 0, 'a new daemon serves the same place');
});

t.test('clients holding files when the daemon is SIGKILLed get ENOTCONN, not a hang', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // a writer with a half-written line, and a reader, both still open; it
  // says 'held' once they are, and goes on when told (a line on its stdin)
  const holder = spawn(
    'bash',
    ['-c', `exec 3>${d.mountpoint}/file_open 4<${d.mountpoint}/hooks; printf '/nonexistent/half' >&3; echo held; read -r _; cat <&4; echo 'x.o' >&3; echo done`],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  t.teardown(() => holder.kill('SIGKILL'));
  let out = '';
  let held!: () => void;
  const isHeld = new Promise<void>((r) => (held = r));
  holder.stdout!.on('data', (b) => {
    out += b;
    if (/^held$/m.test(out)) held();
  });
  holder.stderr!.on('data', (b) => (out += b));
  holder.once('exit', () => held());
  await isHeld;
  t.match(out, /^held\n$/, 'the holder opened both files and wrote half a line, no error');
  d.proc.kill('SIGKILL');
  await d.exited;
  holder.stdin!.end('go\n');
  t.equal(await exitOf(holder, HANG_MS), 0, 'the client finishes on its own');
  t.match(out, /cat: -: Transport endpoint is not connected/, 'the read of the held file says why');
  t.match(out, /write error: Transport endpoint is not connected/, 'so does the write');
  t.match(out, /done/);
});
