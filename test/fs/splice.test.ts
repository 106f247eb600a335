// Readers that copy with sendfile(2) or splice(2) instead of read(2): busybox
// cat (what minimal userlands and the VM guest have), uutils cat, Go and Rust
// copy loops. Since Linux 6.5 the kernel splices a FUSE file from the page
// cache up to its size without asking the daemon, so krsifs files of size 0
// were empty to them, and a splicing reader of `events` saw EOF at once and
// never a record (this host's kernel does that; so does Debian's 6.12, where
// the VM suite shows the records arriving). On older kernels this passes
// either way: splice went through read(2)'s path there.
import t from 'tap';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { cleanup, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

t.test('busybox cat (sendfile) reads every kind of file as read(2) does', { skip: busybox ? false : 'no busybox (apt-get install busybox-static)' }, async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const m = d.mountpoint;
  // a failed write puts an entry in error_log
  await bash(`echo /nonexistent.o > ${m}/process_execution`);
  for (const f of ['hooks', 'error_log', 'process_execution']) {
    const viaRead = await readFile(`${m}/${f}`, 'utf8');
    const viaSendfile = await bash(`${busybox} cat ${m}/${f}`);
    t.equal(viaSendfile.exitCode, 0, `busybox cat ${f} succeeds`);
    t.equal(viaSendfile.stdout, viaRead, `busybox cat ${f} prints what read(2) gets (${viaRead.length} bytes)`);
    const size = (await stat(`${m}/${f}`)).size;
    if (f === 'process_execution') t.ok(size > 0, `${f}: a nominal size above 0 (${size})`);
    else t.equal(size, Buffer.byteLength(viaRead), `${f}: st_size is the length of what a read returns`);
  }
  t.ok((await readFile(`${m}/hooks`, 'utf8')).length > 0 && (await readFile(`${m}/error_log`, 'utf8')).length > 0, 'hooks and error_log are not empty');

  const start = Date.now();
  const r = await bash(`timeout -s KILL 1 ${busybox} cat ${m}/events; echo "status=$?"`);
  t.match(r.stdout, /status=137/, 'busybox cat events waits for records instead of ending at once');
  t.ok(Date.now() - start >= 900, `and was still waiting when killed (${Date.now() - start} ms)`);
  t.equal(d.proc.exitCode, null, 'the daemon serves on');
});
