// Round trips a read costs: a read-only close sends no FLUSH (there is nothing
// to run at a reader's close), a file opened for the page cache is read
// from the daemon once, then served by the kernel, an open with a snapshot
// is read without a round trip, and fixed attributes are asked for once.
import t from 'tap';
import { readFileSync, readSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'cache', 'memfs');
const mp = d.mountpoint;
const counts = () =>
  JSON.parse(readFileSync(`${mp}/counts`, 'utf8')) as {
    flush: number; deepReads: number; snapReads: number; deepGetattrs: number; rootGetattrs: number; stampGetattrs: number; snapReleases: number;
  };

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

t.test('an open with a snapshot: its first read and the end of file are served without the daemon', async (t) => {
  const before = counts().snapReads;
  const first = (await execa('cat', [`${mp}/snap`])).stdout;
  const second = (await execa('busybox', ['cat', `${mp}/snap`])).stdout;
  t.match(first, /^snap \d+$/, 'cat reads the text taken at open');
  t.not(second, first, 'each open takes its own text');
  t.equal(counts().snapReads, before, 'no read request reached the daemon');
  t.equal(counts().snapReleases, 0, 'nor any last close (the FUSE layer answers it)');

  const fd = openSync(`${mp}/snap`, 'r');
  try {
    const buf = Buffer.alloc(64);
    const read = (n: number, at: number) => buf.subarray(0, readSync(fd, buf, 0, n, at)).toString();
    const atOpen = read(64, 0);
    t.equal(read(64, atOpen.length), '', 'the end of file');
    t.equal(counts().snapReads, before, 'both from the snapshot');
    const again = read(3, 0);
    t.equal(counts().snapReads, before + 1, 'a second read at offset 0 asks the daemon');
    t.equal(again, 'sna', 'cut to the size asked');
    const rest = read(64, 3);
    t.match(`${again}${rest}`, /^snap \d+\n$/, 'the rest of that new text is served from it');
    t.not(`${again}${rest}`, atOpen, 'which is not the text of the open');
    t.equal(counts().snapReads, before + 1, 'without asking again');
  } finally {
    closeSync(fd);
  }
});

t.test('fixed attributes are asked for once, not at every open and stat', async (t) => {
  statSync(`${mp}/sub/deep`);
  const before = counts().deepGetattrs;
  for (let i = 0; i < 3; i++) await execa('cat', [`${mp}/sub/deep`]);
  statSync(`${mp}/sub/deep`);
  t.equal(counts().deepGetattrs, before, 'no GETATTR of the file for three cats and a stat');
});

t.test("the root's fixed attributes are answered without the handlers (the kernel still asks: see lifecycle's ENOTCONN)", async (t) => {
  statSync(mp);
  const before = counts().rootGetattrs;
  for (let i = 0; i < 3; i++) await execa('cat', [`${mp}/sub/deep`]);
  t.ok(statSync(mp).isDirectory(), 'a stat of the root');
  t.equal(counts().rootGetattrs, before, 'no GETATTR of the root reached the handlers');
});

t.test('fixed attributes are kept until the handlers say they changed, even with no request on that file', async (t) => {
  const first = statSync(`${mp}/stamp`).mtimeMs;
  const before = counts().stampGetattrs;
  statSync(`${mp}/stamp`);
  t.equal(counts().stampGetattrs, before, 'a second stat is answered from what was kept');
  const fd = openSync(`${mp}/touch`, 'w');
  writeSync(fd, 'x');
  closeSync(fd);
  const second = statSync(`${mp}/stamp`).mtimeMs;
  t.equal(second, first + 1000, 'after the change, a stat shows the new mtime');
  t.equal(counts().stampGetattrs, before + 1, 'asked of the handlers once');
  statSync(`${mp}/stamp`);
  t.equal(counts().stampGetattrs, before + 1, 'and kept again');
});
