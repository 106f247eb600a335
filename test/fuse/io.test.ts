// Writes and their errors travel both ways: what the kernel sends the daemon
// for shell redirections and dd, and the daemon's errno back to the writer.
import t from 'tap';
import fs from 'node:fs';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'io');
const rw = `${d.mountpoint}/rw`;

// What the daemon logged (rw reads back its write log) while fn ran.
async function logged(fn: () => Promise<unknown>): Promise<string> {
  const before = fs.readFileSync(rw, 'utf8');
  await fn();
  return fs.readFileSync(rw, 'utf8').slice(before.length);
}

t.test('echo > file arrives as truncate then write at offset 0', async (t) => {
  const got = await logged(() => execa('sh', ['-c', `echo hello > ${rw}`]));
  // The kernel sends the O_TRUNC truncate after OPEN but without its fh.
  t.equal(got, 'truncate 0\nwrite 0 "hello\\n"\n', 'truncate(0), then one write');
});

t.test('ftruncate carries the fh', async (t) => {
  const fd = fs.openSync(rw, 'r+');
  t.teardown(() => fs.closeSync(fd));
  const got = await logged(async () => fs.ftruncateSync(fd, 3));
  t.equal(got, 'truncate 3 fh\n', 'truncate(3) with the fh of the descriptor');
});

t.test('dd bs=1 delivers one byte per write', async (t) => {
  const got = await logged(() => execa('dd', [`of=${rw}`, 'bs=1', 'conv=notrunc', 'status=none'], { input: 'abc' }));
  t.equal(got, 'write 0 "a"\nwrite 1 "b"\nwrite 2 "c"\n', 'three writes of one byte at offsets 0, 1, 2');
});

t.test('the errno of a failed write reaches the writer', async (t) => {
  // dash's echo says "I/O error" whatever the errno; bash and coreutils print it.
  await t.rejects(execa('bash', ['-c', `echo fail > ${rw}`]), { name: 'ExecaError', stderr: /write error: Invalid argument/ }, 'bash echo: EINVAL');
  await t.rejects(execa('sh', ['-c', `printf fail > ${rw}`]), { name: 'ExecaError', exitCode: 1 }, 'sh printf fails');
  const fd = fs.openSync(rw, 'w');
  t.teardown(() => fs.closeSync(fd));
  t.throws(() => fs.writeSync(fd, 'fail'), { code: 'EINVAL' }, 'write(2) returns EINVAL');
});

t.test('the errno of a failed flush is what close(2) returns', async (t) => {
  const fd = fs.openSync(rw, 'w');
  t.equal(fs.writeSync(fd, 'flusherr\n'), 9, 'the write itself succeeds');
  t.throws(() => fs.closeSync(fd), { code: 'ENOSPC' }, 'close(2) fails with the flush errno');
  const again = fs.openSync(rw, 'r');
  t.doesNotThrow(() => fs.closeSync(again), 'a later close is fine');
});

t.test('reads honour offsets', async (t) => {
  const fd = fs.openSync(`${d.mountpoint}/sub/deep`, 'r');
  t.teardown(() => fs.closeSync(fd));
  const buf = Buffer.alloc(10);
  t.equal(fs.readSync(fd, buf, 0, 10, 2), 3, 'pread at offset 2 gets the last 3 bytes');
  t.equal(buf.subarray(0, 3).toString(), 'ep\n', 'and they are the right ones');
  t.equal(fs.readSync(fd, buf, 0, 10, 5), 0, 'pread at the end gets nothing');
});
