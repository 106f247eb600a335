// Requests are served concurrently: a slow answer does not hold up others.
// Proven by order, not by the clock: the fixture holds every write to /slow
// and /slow2 until it gets SIGUSR1, and prints when each one starts and ends.
// Served one at a time, the second request would never reach the daemon while
// the first is held (the tests then fail on their 20 s wait).
import t from 'tap';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'concurrency');
const release = () => d.child.kill('SIGUSR1');
const ended = (data: string) => d.lines.some((l) => l.startsWith('write-end ') && l.endsWith(JSON.stringify(`${data}\n`)));

t.test('two held writes to two files are both in the daemon at once', async (t) => {
  const a = execa('sh', ['-c', `echo one > ${d.mountpoint}/slow`]);
  const b = execa('sh', ['-c', `echo two > ${d.mountpoint}/slow2`]);
  try {
    await d.waitLine(/^write-begin \/slow "one\\n"$/, 20_000);
    await d.waitLine(/^write-begin \/slow2 "two\\n"$/, 20_000);
    t.pass('the daemon has both writes in hand');
    t.notOk(ended('one') || ended('two'), 'and has answered neither yet');
    t.equal(a.exitCode ?? null, null, 'the first writer is still waiting');
    t.equal(b.exitCode ?? null, null, 'the second too');
  } finally {
    release();
  }
  t.equal((await a).exitCode, 0, 'released, the first write succeeds');
  t.equal((await b).exitCode, 0, 'and the second');
  t.ok(ended('one') && ended('two'), 'both answered after the release');
});

t.test('a held write does not hold up a read', async (t) => {
  const slow = execa('sh', ['-c', `echo three > ${d.mountpoint}/slow`]);
  try {
    await d.waitLine(/^write-begin \/slow "three\\n"$/, 20_000);
    const cat = await execa('cat', [`${d.mountpoint}/whoami`], { timeout: 20_000, reject: false });
    t.equal(cat.exitCode, 0, 'cat of another file is answered while the write is held');
    t.match(cat.stdout, /^pid=\d+ uid=0 gid=0$/, 'with its content');
    t.notOk(ended('three'), 'the write was still held when the read was answered');
    t.equal(slow.exitCode ?? null, null, 'and its writer still waiting');
  } finally {
    release();
  }
  t.equal((await slow).exitCode, 0, 'released, the write succeeds');
});
