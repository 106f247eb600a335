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
  t.match(ls.stdout, /^-r-------- 1 0 0 0 /, 'mode 0400, root, size 0');
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
