// The events file on this host (no program can attach here, so no records):
// it is read-only, a read blocks like trace_pipe, and a reader that is killed
// while it waits goes away without disturbing the daemon. The VM
// suite proves records, several readers and the lost counter.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cleanup, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

/** True once `pid` waits for a FUSE answer in read(2) or sendfile(2); false if it ends first or 30 s pass. */
async function untilWaitingInFuseRead(pid: number, ended: Promise<unknown>): Promise<boolean> {
  let done = false;
  void ended.then(() => (done = true));
  const until = Date.now() + 30_000;
  while (!done && Date.now() < until) {
    const [wchan, sys] = await Promise.all(['wchan', 'syscall'].map((f) => readFile(`/proc/${pid}/${f}`, 'utf8').catch(() => '')));
    if (/fuse|wait_answer/.test(wchan!) && /^(0|40) /.test(sys!)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

t.test('events: 0400, blocks, a killed reader ends, the daemon serves on', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const ls = await bash(`ls -ln ${d.mountpoint}/events`);
  t.match(ls.stdout, /^-r-------- 1 0 0 65536 /, 'mode 0400, root, a nominal size (a stream has none; 0 would end splicing readers)');
  // a reader waits in its read, the request with the daemon (its wchan is
  // FUSE's request_wait_answer, in read(2) or sendfile(2))
  const cat = spawn('cat', [`${d.mountpoint}/events`], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  cat.stdout!.on('data', (b) => (out += b));
  const exited = new Promise<NodeJS.Signals | null>((r) => cat.once('exit', (_c, sig) => r(sig)));
  const waiting = await untilWaitingInFuseRead(cat.pid!, exited);
  t.ok(waiting, 'cat blocks in its read, waiting for records');
  // Killed, it ends; one the daemon never answered would stay in the kernel
  // for good (the request is with the daemon): the 30 s bound turns that into
  // a failure, it is not a speed claim.
  cat.kill('SIGKILL');
  const how = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still there after 30 s'), 30_000).unref())]);
  t.equal(how, 'SIGKILL', 'the killed reader went away');
  t.equal(out, '', 'having read nothing');
  const w = await bash(`echo x > ${d.mountpoint}/events`);
  t.equal(w.exitCode, 1, 'writing is refused');
  t.equal((await bash(`cat ${d.mountpoint}/hooks`)).exitCode, 0, 'the daemon still serves');
  t.equal(d.proc.exitCode, null);
});

t.test('events with O_NONBLOCK is EAGAIN when empty; written as an object path, it is refused at once', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const nb = await bash(`timeout -s KILL 5 dd if=${d.mountpoint}/events of=/dev/null iflag=nonblock 2>&1; echo "status=$?"`);
  t.match(nb.stdout, /Resource temporarily unavailable/, 'a non-blocking reader is told there is nothing');
  t.notMatch(nb.stdout, /status=137/, 'and was not left waiting');
  // The daemon reads objects itself: a path to its own blocking file must not
  // make it wait on itself (that once left the daemon unkillable, a thread
  // stuck in a FUSE request only it could answer).
  const w = await bash(`timeout -s KILL 10 bash -c 'echo ${d.mountpoint}/events > ${d.mountpoint}/file_open'; echo "status=$?"`);
  t.match(w.stdout, /^status=1$/m, 'the write failed by itself, not killed by timeout (137)');
  t.match(w.stdout + w.stderr, /Exec format error/, 'ENOEXEC: a stream is not a BPF object');
  const log = (await bash(`cat ${d.mountpoint}/error_log`)).stdout;
  t.match(log, /a stream with nothing to read now .*not a BPF object/);
  t.equal((await bash(`echo '!nothing' > ${d.mountpoint}/file_open`)).exitCode, 1, 'the file\'s queue is not held: the next line runs');
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
});

t.test('the ring is mapped only while events is open (libbpf maps its data twice: 8 MiB of RSS)', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // the ring's read-only shared mapping: its producer page and the data twice
  const ringMapped = async () =>
    (await readFile(`/proc/${d.proc.pid}/maps`, 'utf8')).split('\n').some((l) => {
      const m = /^([0-9a-f]+)-([0-9a-f]+) r--s .*anon_inode:bpf-map/.exec(l);
      return m !== null && parseInt(m[2]!, 16) - parseInt(m[1]!, 16) >= 8 << 20;
    });
  const until = async (want: boolean) => {
    for (let i = 0; i < 100 && (await ringMapped()) !== want; i++) await new Promise((r) => setTimeout(r, 50));
    return ringMapped();
  };
  t.equal(await ringMapped(), false, 'idle, nobody reading: not mapped');
  const cat = spawn('cat', [`${d.mountpoint}/events`], { stdio: 'ignore' });
  const exited = new Promise((r) => cat.once('exit', r));
  t.equal(await until(true), true, 'mapped once a reader opened events');
  cat.kill('SIGKILL');
  await exited;
  t.equal(await until(false), false, 'unmapped when the last reader went');
});
