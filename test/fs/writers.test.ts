// Real clients: bash, dd with tiny blocks, tee, setpriv without CAP_MAC_ADMIN,
// a Node fs client, and many writers at once.
import t from 'tap';
import { open } from 'node:fs/promises';
import { cleanup, objDir, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const entries = async (mp: string) => (await bash(`cat ${mp}/error_log`)).stdout.trimEnd().split('\n').filter((l) => l && !l.startsWith('    '));
const lastEntry = async (mp: string) => (await entries(mp)).at(-1) ?? '';

t.test('a relative path resolves against the writer\'s cwd', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // From the objects' folder the object is found, read and inspected: the
  // socket filter in it is refused (EINVAL) on any kernel, nothing attaches ...
  const here = await bash(`cd ${objDir}/fixtures && echo not_lsm.o > ${d.mountpoint}/process_execution`);
  t.equal(here.exitCode, 1, 'the write fails ...');
  t.match(here.stderr, 'write error: Invalid argument', '... with EINVAL: the object was found and read');
  t.equal((await entries(d.mountpoint)).length, 1, 'one error_log entry');
  t.match(await lastEntry(d.mountpoint), ` process_execution: "not_lsm.o": EINVAL (`, 'for this line');
  t.match(await lastEntry(d.mountpoint), `attach ${objDir}/fixtures/not_lsm.o: `, 'naming the object as resolved in the writer\'s cwd');
  // ... from elsewhere it is not, although the daemon's own cwd has it
  const there = await bash(`cd / && echo not_lsm.o > ${d.mountpoint}/process_execution`);
  t.equal(there.exitCode, 1);
  t.match(there.stderr, 'write error: No such file or directory');
  t.equal((await entries(d.mountpoint)).length, 2, 'a second error_log entry');
  t.match(await lastEntry(d.mountpoint), ` process_execution: "not_lsm.o": ENOENT (`, 'for this line: ENOENT');
  // and a relative path into a subfolder works the same way
  const sub = await bash(`cd ${objDir}/.. && echo obj/fixtures/not_lsm.o > ${d.mountpoint}/process_execution`);
  t.match(sub.stderr, 'write error: Invalid argument', 'obj/fixtures/not_lsm.o found from bpf/');
  t.match(await lastEntry(d.mountpoint), `"obj/fixtures/not_lsm.o": EINVAL (Invalid argument): attach ${objDir}/fixtures/not_lsm.o: `);
});

t.test('the daemon logs an object as resolved in the writer\'s cwd', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  // deny_exec.o reaches the kernel: refused here (EPERM), attached where BPF LSM works
  const r = await bash(`cd ${objDir} && echo deny_exec.o target=/nonexistent/victim > ${d.mountpoint}/process_execution`);
  t.notMatch(r.stderr, /No such file or directory/, 'found from the objects\' folder');
  t.match(d.log(), `object=${objDir}/deny_exec.o`, 'the daemon\'s log names the resolved object');
  if (r.exitCode === 0) t.equal((await bash(`echo '!deny_exec' > ${d.mountpoint}/process_execution`)).exitCode, 0, 'detached');
  else t.match(await lastEntry(d.mountpoint), `"deny_exec.o target=/nonexistent/victim": EPERM (`, 'refused by this kernel');
});

t.test('a writer without CAP_MAC_ADMIN gets EPERM, and error_log says why', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const r = await bash(
    `setpriv --inh-caps=-mac_admin --bounding-set=-mac_admin bash -c 'echo /nonexistent.o > ${d.mountpoint}/process_execution'`,
  );
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /Operation not permitted/);
  t.equal((await entries(d.mountpoint)).length, 1, 'one error_log entry');
  t.match(await lastEntry(d.mountpoint), /EPERM .*lacks CAP_MAC_ADMIN/);
  t.notMatch(await lastEntry(d.mountpoint), /nonexistent/, 'the line was never run');
  const read = await bash(`setpriv --inh-caps=-mac_admin --bounding-set=-mac_admin cat ${d.mountpoint}/process_execution`);
  t.equal(read.exitCode, 0, 'reading needs no CAP_MAC_ADMIN');
});

t.test('one line split over many writes (dd bs=1) runs once, whole', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const r = await bash(`printf '/nonexistent/split.o target=abc\\n' | dd of=${d.mountpoint}/process_execution bs=1 2>&1`);
  t.match(r.stdout, /No such file or directory/, 'dd sees the errno of the write that completed the line');
  const log = (await bash(`cat ${d.mountpoint}/error_log`)).stdout.trimEnd().split('\n');
  t.equal(log.length, 1, 'one entry');
  t.match(log[0], /"\/nonexistent\/split.o target=abc": ENOENT/);
});

t.test('tee, and a last line without a newline runs at close', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const tee = await bash(`echo '!nope' | tee ${d.mountpoint}/file_open`);
  t.equal(tee.exitCode, 1);
  t.match(tee.stderr, /No such file or directory/);
  const fh = await open(`${d.mountpoint}/file_open`, 'w');
  await fh.write('!also_not');
  await t.rejects(fh.close(), { code: 'ENOENT' }, 'close(2) returns the answer of the last line');
  t.match(await lastEntry(d.mountpoint), /"!also_not": ENOENT/);
});

t.test('a Node fs client: write errors carry the errno, reads see the listing', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const fh = await open(`${d.mountpoint}/process_execution`, 'w');
  // libuv has no name for ENOEXEC: Node reports it as errno -8
  await t.rejects(fh.write('/etc/passwd\n'), { errno: -8 } as unknown as Error);
  await t.rejects(fh.write('!x\n!y\n'), { code: 'ENOENT' }, 'the first failing line fails the write');
  await fh.write('\n');
  await fh.close();
  const r = await open(`${d.mountpoint}/process_execution`, 'r');
  t.equal((await r.readFile()).length, 0);
  await r.close();
});

t.test('50 concurrent writers over several files each get their own answer', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const files = ['process_execution', 'file_open', 'file_deletion', 'socket_bind', 'bpf_syscall'];
  const jobs = Array.from({ length: 50 }, (_, i) => {
    const file = files[i % files.length]!;
    // even: a missing object (ENOENT); odd: a non-BPF file (ENOEXEC)
    const line = i % 2 === 0 ? `/nonexistent/w${i}.o` : '/etc/hostname';
    return bash(`echo ${line} > ${d.mountpoint}/${file}`).then((r) => ({ i, file, r }));
  });
  const done = await Promise.all(jobs);
  for (const { i, r } of done) {
    t.match(r.stderr, i % 2 === 0 ? 'No such file or directory' : 'Exec format error', `writer ${i} got its own errno`);
  }
  const log = (await bash(`cat ${d.mountpoint}/error_log`)).stdout.trimEnd().split('\n');
  t.equal(log.length, 50, 'one entry per writer');
  for (let i = 0; i < 50; i += 2) t.ok(log.some((l) => l.includes(`w${i}.o`)), `entry for writer ${i}`);
  t.equal(d.proc.exitCode, null, 'daemon alive');
});
