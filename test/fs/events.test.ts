// The events file on this host (no program can attach here, so no records):
// it is read-only, a read blocks like trace_pipe, and a reader that is killed
// while it waits goes away at once without disturbing the daemon. The VM
// suite proves records, several readers and the lost counter.
import t from 'tap';
import { cleanup, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

t.test('events: 0400, blocks, a killed reader ends promptly, the daemon serves on', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const ls = await bash(`ls -ln ${d.mountpoint}/events`);
  t.match(ls.stdout, /^-r-------- 1 0 0 65536 /, 'mode 0400, root, a nominal size (a stream has none; 0 would end splicing readers)');
  const start = Date.now();
  const r = await bash(`timeout -s KILL 1 cat ${d.mountpoint}/events; echo "status=$?"`);
  const took = Date.now() - start;
  t.match(r.stdout, /status=137/, 'cat was still waiting for records when killed');
  t.ok(took < 5000, `the killed reader went away at once (${took} ms)`);
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
  const start = Date.now();
  const w = await bash(`timeout -s KILL 10 bash -c 'echo ${d.mountpoint}/events > ${d.mountpoint}/file_open'; echo "status=$?"`);
  t.ok(Date.now() - start < 5000, `answered in ${Date.now() - start} ms`);
  t.match(w.stdout + w.stderr, /Exec format error/, 'ENOEXEC: a stream is not a BPF object');
  const log = (await bash(`cat ${d.mountpoint}/error_log`)).stdout;
  t.match(log, /a stream with nothing to read now .*not a BPF object/);
  t.equal((await bash(`echo '!nothing' > ${d.mountpoint}/file_open`)).exitCode, 1, 'the file\'s queue is not held: the next line runs');
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
});
