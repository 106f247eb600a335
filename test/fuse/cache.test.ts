// Round trips a read costs: a read-only close sends no FLUSH (there is nothing
// to run at a reader's close), and a file opened for the page cache is read
// from the daemon once, then served by the kernel.
import t from 'tap';
import { readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'cache', 'memfs');
const mp = d.mountpoint;
const counts = () => JSON.parse(readFileSync(`${mp}/counts`, 'utf8')) as { flush: number; deepReads: number };

t.test('closing a read-only descriptor sends no FLUSH; a writer\'s close still does', async (t) => {
  const before = counts().flush;
  for (let i = 0; i < 3; i++) await execa('cat', [`${mp}/whoami`]);
  t.equal(counts().flush, before, 'three cats of a read-only open: no FLUSH reached the daemon');
  const fd = openSync(`${mp}/rw`, 'w');
  writeSync(fd, 'x');
  closeSync(fd);
  t.equal(counts().flush, before + 1, 'the writer\'s close: one FLUSH (a line may run at close)');
});

t.test('a file opened for the page cache reaches the daemon once', async (t) => {
  const before = counts().deepReads;
  for (let i = 0; i < 3; i++) {
    const { stdout } = await execa('cat', [`${mp}/sub/deep`]);
    t.equal(stdout, 'deep', `cat ${i + 1} reads the whole file`);
  }
  t.equal(counts().deepReads - before, 1, 'one read request for three cats: the page cache served the rest');
  // splice(2)/sendfile(2) of a cached file is the page cache's, and must not be refused
  const { stdout } = await execa('busybox', ['cat', `${mp}/sub/deep`]);
  t.equal(stdout, 'deep', 'busybox cat (sendfile) reads it too');
});
