// Object paths resolve exactly as the writer's own open(2) would (its root,
// its cwd, its mounts), and the same rules hold for relative and absolute
// paths: nothing under /proc (where "self" is the daemon, and magic links
// jump anywhere), no kernel interface file (sysfs, bpffs, tracefs, …) is
// ever read. Issue 11, point 4, with the variants an attacker would try.
// On this host the kernel refuses LSM loads, so "got in" means the daemon
// asked the kernel: error_log then says "load program … EPERM".
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFile, chmod, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanup, objDir, startDaemon, type Daemon, errorLogEntries as entries } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const obj = path.join(objDir, 'deny_exec.o');
const reachedKernel = /EPERM \(Operation not permitted\): load program deny_exec/;

/** Run `cmd` (which writes one line to $M/process_execution); the write's error and the entry it left. */
async function attempt(d: Daemon, cmd: string): Promise<{ stderr: string; entry: string }> {
  const before = (await entries(d)).length;
  const r = await bash(`M=${d.mountpoint}; ${cmd}`);
  const after = await entries(d);
  return { stderr: r.stderr, entry: after.length === before + 1 ? after.at(-1)! : `(${after.length - before} new entries)` };
}

t.test('relative and absolute paths obey the same rules: nothing under /proc is read', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'krsifs-paths-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  await symlink('/proc/self/environ', path.join(tmp, 'environ.o'));
  await symlink('../../proc/self/environ', path.join(tmp, 'relenviron.o'));
  await symlink(obj, path.join(tmp, 'plain.o'));
  // fd 5 is the object, opened by the writer: /proc/PID/fd/5 and /dev/fd/5 are magic links to it
  const fd5 = `exec 5<${obj}; P=$BASHPID;`;
  const cases: [string, string][] = [
    ['relative proc/self/environ from /', 'cd / && echo proc/self/environ > $M/process_execution'],
    ['absolute /proc/self/environ', 'echo /proc/self/environ > $M/process_execution'],
    ['relative ../proc/PID/fd/N', `${fd5} cd /tmp && echo ../proc/$P/fd/5 > $M/process_execution`],
    ['absolute /proc/PID/fd/N', `${fd5} echo /proc/$P/fd/5 > $M/process_execution`],
    ['/dev/fd/N', `${fd5} echo /dev/fd/5 > $M/process_execution`],
    ['relative proc/PID/root/…', `${fd5} cd / && echo proc/$P/root${obj} > $M/process_execution`],
    ['absolute /proc/PID/root/…', `${fd5} echo /proc/$P/root${obj} > $M/process_execution`],
    ['/proc/PID/cwd/…', `${fd5} cd ${objDir} && echo /proc/$P/cwd/deny_exec.o > $M/process_execution`],
    ['relative proc/thread-self/environ', 'cd / && echo proc/thread-self/environ > $M/process_execution'],
    ['/proc/1/environ', 'echo /proc/1/environ > $M/process_execution'],
    ['a plain procfs file', 'echo /proc/version > $M/process_execution'],
    ['an absolute symlink to /proc/self/environ', `echo ${tmp}/environ.o > $M/process_execution`],
    ['a relative symlink to /proc/self/environ', `cd ${tmp} && echo relenviron.o > $M/process_execution`],
  ];
  for (const [what, cmd] of cases) {
    const r = await attempt(d, cmd);
    t.match(r.stderr, 'write error: Invalid cross-device link', `${what}: EXDEV`);
    t.match(r.entry, /EXDEV .*\/proc/, `${what}: error_log says why (/proc)`);
    t.notMatch(r.entry, /load program|not an ELF/, `${what}: nothing was read`);
  }
  // and what is no trick still gets in, relative or absolute
  for (const [what, cmd] of [
    ['absolute', `echo ${obj} > $M/process_execution`],
    ['relative', `cd ${objDir} && echo deny_exec.o > $M/process_execution`],
    ['relative with ..', `cd ${objDir}/fixtures && echo ../deny_exec.o > $M/process_execution`],
    ['through an ordinary symlink', `cd ${tmp} && echo plain.o > $M/process_execution`],
  ] as const) {
    t.match((await attempt(d, cmd)).entry, reachedKernel, `${what}: the object reaches the kernel`);
  }
  t.notMatch(d.log(), /KRSIFS|PATH=/, "the daemon's environment never reached a log");
});

t.test('kernel interface files and special files are never read as objects', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'krsifs-special-'));
  t.teardown(() => rm(tmp, { recursive: true, force: true }));
  execFileSync('mkfifo', [path.join(tmp, 'fifo')]);
  await writeFile(path.join(tmp, 'big.o'), '');
  await truncate(path.join(tmp, 'big.o'), 64 * 1024 * 1024 + 1);
  const cases: [string, string, string, RegExp][] = [
    ['a sysfs file', '/sys/kernel/btf/vmlinux', 'Exec format error', /ENOEXEC .*sysfs.*not read/],
    ['a bpffs pin (a map)', `${d.pinRoot}/events`, 'Exec format error', /ENOEXEC .*bpffs.*not read/],
    ['a securityfs file', '/sys/kernel/security/lsm', 'Exec format error', /ENOEXEC .*securityfs.*not read/],
    ['a cgroup file', '/sys/fs/cgroup/unified/cgroup.procs', 'Exec format error', /ENOEXEC .*cgroup2?.*not read/],
    ["krsifs's own events stream", `${d.mountpoint}/events`, 'Exec format error', /ENOEXEC .*stream/],
    ['a fifo (nobody writes it)', `${tmp}/fifo`, 'Exec format error', /ENOEXEC .*not a regular file/],
    ['a device', '/dev/zero', 'Exec format error', /ENOEXEC .*not a regular file/],
    ['a directory', tmp, 'Is a directory', /EISDIR/],
    ['a file over 64 MiB', `${tmp}/big.o`, 'Argument list too long', /E2BIG .*64 MiB/],
  ];
  for (const [what, p, words, says] of cases) {
    if ((await bash(`test -e ${p}`)).exitCode !== 0) {
      t.comment(`${what}: ${p} is not on this machine; skipped`);
      continue;
    }
    const r = await attempt(d, `echo ${p} > $M/process_execution`);
    t.match(r.stderr, `write error: ${words}`, `${what}: ${words}`);
    t.match(r.entry, says, `${what}: error_log says why`);
  }
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
});

t.test('a writer in a chroot whose cwd is outside it: its paths are what it would open itself', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const root = await mkdtemp(path.join(os.tmpdir(), 'krsifs-cwdout-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await copyFile(obj, path.join(root, 'inner.o'));
  // the fd is opened before chroot(2); chdir is never called, so the cwd (objDir) stays outside the root
  const inChroot = (line: string) =>
    bash(
      `cd ${objDir} && python3 -c '
import os, sys
fd = os.open("${d.mountpoint}/process_execution", os.O_WRONLY)
os.chroot("${root}")
try:
    open(sys.argv[1], "rb").close(); print("own-open=ok")
except OSError as e:
    print("own-open=" + e.strerror)
try:
    os.write(fd, (sys.argv[1] + "\\n").encode()); print("write=ok")
except OSError as e:
    print("write=" + e.strerror)' '${line}'`,
    );
  const last = async () => (await entries(d)).at(-1) ?? '';
  let r = await inChroot('deny_exec.o');
  t.match(r.stdout, 'own-open=ok', 'the writer itself opens deny_exec.o from its cwd');
  t.match(await last(), reachedKernel, 'and so does the daemon for it');
  r = await inChroot('/inner.o');
  t.match(await last(), reachedKernel, 'an absolute path is inside its root');
  t.match(await last(), `(object ${root}/inner.o)`, 'the chroot\'s copy');
  r = await inChroot(obj);
  t.match(r.stdout, 'own-open=No such file or directory', 'a host path does not exist for the writer');
  t.match(await last(), /ENOENT/, 'nor for the daemon');
  // from a cwd outside the root, ".." climbs to the real / (for the writer too): /proc is still refused
  r = await inChroot('../../../../../../../../proc/self/environ');
  t.match(r.stdout, 'own-open=ok', 'the writer reaches /proc/self/environ with ..');
  t.match(r.stdout, 'write=Invalid cross-device link', 'but the daemon does not read it: EXDEV');
});

t.test('a writer in its own mount namespace: its mounts, not the daemon\'s', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-mntns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'private'));
  await chmod(dir, 0o755);
  await writeFile(path.join(dir, 'private', 'host-only.o'), 'host');
  const r = await bash(
    `unshare -m --propagation private bash -c 'mount -t tmpfs none ${dir}/private && cp ${obj} ${dir}/private/ns.o && ` +
      `echo ${dir}/private/ns.o > ${d.mountpoint}/process_execution; echo abs=$?; ` +
      `cd ${dir}/private && echo ns.o > ${d.mountpoint}/process_execution; echo rel=$?; ` +
      `echo ${dir}/private/host-only.o > ${d.mountpoint}/process_execution; echo hidden=$?'`,
  );
  t.match(r.stdout, /abs=1\nrel=1\nhidden=1/, 'three writes, each answered');
  const log = await entries(d);
  t.match(log.at(-3), reachedKernel, "an absolute path on the writer's private mount reaches the kernel");
  t.match(log.at(-2), reachedKernel, 'a relative one too');
  t.match(log.at(-1), /ENOENT/, 'a file the private mount hides from the writer is missing');
});
