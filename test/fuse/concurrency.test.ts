// Requests are served concurrently: a slow answer does not hold up others.
import t from 'tap';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'concurrency');

t.test('two slow writes to two files take one delay, not two', async (t) => {
  const start = Date.now();
  await Promise.all([
    execa('sh', ['-c', `echo x > ${d.mountpoint}/slow`]),
    execa('sh', ['-c', `echo y > ${d.mountpoint}/slow2`]),
  ]);
  const ms = Date.now() - start;
  t.ok(ms >= 450, `each waited for the 500 ms answer (${ms} ms)`);
  t.ok(ms < 900, `they overlapped (${ms} ms < 900 ms)`);
});

t.test('a slow write does not hold up reads', async (t) => {
  const slow = execa('sh', ['-c', `echo x > ${d.mountpoint}/slow`]);
  const start = Date.now();
  await execa('cat', [`${d.mountpoint}/whoami`]);
  t.ok(Date.now() - start < 400, 'cat answers while the write waits');
  await slow;
});
