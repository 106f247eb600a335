// The daemon is a privileged deputy: each test here is an attack that got
// through once (issue 11), tried with real processes against a real mount.
// On this host the kernel refuses LSM loads, so "got in" means the daemon
// asked the kernel: error_log then says the kernel refused.
import t from 'tap';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanup, objDir, startDaemon, type Daemon, errorLogEntries as entries } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const obj = path.join(objDir, 'deny_exec.o');
/** The words error_log has when a line reached the kernel (which refuses LSM programs here). */
const reachedKernel = /load|kernel|BPF LSM|verifier/i;

/** Put a marker entry in error_log, so "cleared" and "new entry" can be told apart. */
async function mark(d: Daemon, marker: string): Promise<void> {
  await bash(`echo '!${marker}' > ${d.mountpoint}/process_execution`);
}

t.test('root in a user namespace of its own holds nothing here', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  await mark(d, 'marker_userns');
  const before = await entries(d);
  for (const [who, prefix] of [
    ['without CAP_MAC_ADMIN in its bounding set', 'setpriv --bounding-set=-mac_admin unshare -Ur'],
    ['with every capability before unshare', 'unshare -Ur'],
    ['and in new mount and pid namespaces too', 'unshare -Urmpf --mount-proc'],
  ] as const) {
    const r = await bash(
      `${prefix} bash -c 'echo "!*" > ${M}/process_execution; echo detach=$?; : > ${M}/error_log; echo clear=$?; ` +
        `echo ${obj} > ${M}/process_execution; echo attach=$?; printf "${obj}" > ${M}/file_open; echo close=$?'`,
    );
    t.match(r.stdout, /detach=1\nclear=1\nattach=1\nclose=1/, `${who}: detach, clear, attach and a line for close all fail`);
    t.match(r.stderr, /Operation not permitted/, `${who}: EPERM`);
  }
  const after = await entries(d);
  t.same(after.slice(0, before.length), before, 'error_log was not cleared');
  const denials = after.slice(before.length);
  t.ok(denials.length >= 12, `every refused request has its entry (${denials.length})`);
  t.ok(denials.every((l) => /EPERM .*user namespace of its own/.test(l)), 'each says the writer is in a user namespace of its own');
  t.notOk(after.some((l) => reachedKernel.test(l) && !/user namespace/.test(l)), 'no line reached the kernel');
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
});

t.test('a file opened by root and handed to a process without CAP_MAC_ADMIN does not carry the right', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const r = await bash(
    `exec 3>${M}/process_execution; ` +
      `setpriv --inh-caps=-all --bounding-set=-mac_admin sh -c 'echo ${obj} >&3; echo child=$?'; ` +
      `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all sh -c 'echo "!*" >&3; echo nobody=$?'`,
  );
  t.match(r.stdout, /child=1\nnobody=1/, 'both writes through the inherited fd fail');
  const log = await entries(d);
  t.equal(log.filter((l) => /EPERM .*lacks CAP_MAC_ADMIN/.test(l)).length, 2, 'two EPERM entries, lacking CAP_MAC_ADMIN');
  t.notOk(log.some((l) => reachedKernel.test(l)), 'nothing reached the kernel');
});

// python3 writes with os.write on one fd and closes nothing in between (a
// shell's `printf … >&3` closes a copy of fd 3 after each command, and that
// close, being the writer's own, runs the unfinished line at once).
const py = (code: string) => `python3 -c '${code.replace(/'/g, "'\\''")}'`;

t.test("a partial line runs only as its writer: another process's close does not run it", async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const empty = await mkdtemp(path.join(os.tmpdir(), 'krsifs-trust-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  // The writer starts "deny_exec.o" in an empty cwd. Unprivileged children
  // that inherited the fd close it from objDir, where deny_exec.o exists: if
  // their close ran the line, the daemon would load the object from there.
  const r = await bash(
    `cd ${empty} && ` +
      py(
        `import os, subprocess
fd = os.open("${M}/process_execution", os.O_WRONLY)
os.write(fd, b"deny_exec.o")
for cmd in (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "true"],
            ["setpriv", "--inh-caps=-all", "--bounding-set=-mac_admin", "sh", "-c", "exec 4>&${'$'}{0}; exec 4>&-", str(fd)]):
    subprocess.run(cmd, cwd="${objDir}", pass_fds=(fd,), check=True)
print("closed-by-others", flush=True)
try:
    os.close(fd)
    print("writer-close=0")
except OSError as e:
    print("writer-close=" + e.strerror)`,
      ),
  );
  t.match(r.stdout, /closed-by-others\nwriter-close=No such file or directory/, "the writer's own close ran the line and returned its answer");
  const log = await entries(d);
  t.equal(log.length, 1, `one entry (${log.join(' | ')})`);
  t.match(log[0], /process_execution: "deny_exec\.o": ENOENT/, "it ran from the writer's cwd, where there is no such file");
  t.notOk(log.some((l) => reachedKernel.test(l)), "the object in the children's cwd was never loaded");
});

t.test("a line never mixes two processes' bytes", async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-mix-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const childWriter = path.join(dir, 'child.py');
  await writeFile(childWriter, 'import os, sys\ntry:\n    os.write(int(sys.argv[1]), b"ent/x.o\\n")\nexcept OSError as e:\n    sys.exit(e.strerror)\n');
  const r = await bash(
    py(
      `import os, subprocess
fd = os.open("${M}/process_execution", os.O_WRONLY)
os.write(fd, b"/nonexist")
other = subprocess.run(["python3", "${childWriter}", str(fd)], pass_fds=(fd,), capture_output=True, text=True)
print("other=%d %s" % (other.returncode, other.stderr.strip()))
try:
    os.write(fd, b"ent/y.o\\n")
except OSError as e:
    print("writer=" + e.strerror)`,
    ),
  );
  t.match(r.stdout, /other=[12] .*Device or resource busy/, "the other process's write is refused with EBUSY");
  t.match(r.stdout, /writer=No such file or directory/, "the writer's line is its own: /nonexistent/y.o");
  const log = (await entries(d)).join('\n');
  t.match(log, /EBUSY .*unfinished line/, 'error_log says why');
  t.match(log, /"\/nonexistent\/y\.o": ENOENT/, 'and has the writer\'s line');
});

t.test('a failing line drops the rest of its write, the unfinished tail too', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const r = await bash(
    py(
      `import os
fd = os.open("${M}/process_execution", os.O_WRONLY)
for chunk in (b"/nonexistent/a.o\\n/nonexistent/b.o\\n/nonexistent/tail", b"/nonexistent/next.o\\n"):
    try:
        os.write(fd, chunk)
        print("ok")
    except OSError as e:
        print(e.strerror)`,
    ),
  );
  t.equal(r.stdout, 'No such file or directory\nNo such file or directory\n', 'both writes fail, each on its first line');
  const lines = (await entries(d)).map((l) => /process_execution: "([^"]*)"/.exec(l)?.[1]);
  t.same(lines, ['/nonexistent/a.o', '/nonexistent/next.o'], 'b.o and the tail never ran; the next write starts a new line');
});

t.test('names and paths are escaped where they are printed: no forged entries, no terminal controls', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-esc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const evil = 'x\n2026-01-01T00:00:00.000Z process_execution: "forged": EPERM (Operation not permitted): forged\x1b[31m\x07\u202e';
  await writeFile(path.join(dir, evil), 'not an object');
  await symlink(path.join(dir, evil), path.join(dir, 'innocent.o'));
  const r = await bash(`echo ${dir}/innocent.o > ${M}/process_execution`);
  t.equal(r.exitCode, 1, 'the write fails (not a BPF object)');
  const text = await readFile(path.join(M, 'error_log'), 'utf8');
  t.equal((await entries(d)).length, 1, 'one entry, not two');
  t.notMatch(text, /[\x1b\x07\u202e]/, 'no ESC, BEL or bidi override reaches a reader');
  t.match(text, /x\\n2026-01-01T00:00:00\.000Z process_execution: \\"forged\\"|x\\n2026-01-01T00:00:00\.000Z process_execution: "forged"/, 'the name is there, escaped');
  t.match(text, /\\x1b\[31m\\x07\\u202e/, 'controls as \\x escapes');
  // a line with controls, and the daemon's own log
  await bash(`printf '/nonexistent/\\033]0;pwned\\007\\n' > ${M}/process_execution`);
  t.notMatch(await readFile(path.join(M, 'error_log'), 'utf8'), /[\x1b\x07]/, 'a written line is escaped too');
  t.notMatch(d.log(), /[\x1b\x07\u202e]/, "the daemon's log holds no control either");
  t.notMatch(d.log(), /^2026-01-01T00:00:00\.000Z/m, "and no forged line");
});

t.test('errno words are the C library\'s', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-words-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await symlink('b', path.join(dir, 'a'));
  await symlink('a', path.join(dir, 'b'));
  await bash(`echo ${dir}/a > ${d.mountpoint}/process_execution`);
  await bash(`echo /proc/self/fd/0 > ${d.mountpoint}/process_execution`);
  const text = (await entries(d)).join('\n');
  t.match(text, /ELOOP \(Too many levels of symbolic links\)/, 'ELOOP');
  t.match(text, /EXDEV \(Invalid cross-device link\)/, 'EXDEV');
  t.notMatch(text, /Unknown error/, 'no "Unknown error N"');
});

t.test('foreign things in the pin directory are reported once and left alone', async (t) => {
  const root = `/sys/fs/bpf/krsifs-test-foreign-${process.pid}`;
  await mkdir(`${root}/process_execution`, { recursive: true });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const mk = (name: string) =>
    bash(`bpftool map create '${root}/process_execution/${name}' type array key 4 value 4 entries 1 name evilmap`);
  t.equal((await mk('evilmap')).exitCode, 0, 'bpftool pinned a map in the pin directory');
  t.equal((await mk('tab\tname')).exitCode, 0, 'and one whose name holds a tab');
  const d = await startDaemon({ args: ['--pin-root', root] });
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  t.equal(await readFile(`${M}/process_execution`, 'utf8'), '', 'neither is listed');
  const reported = (await entries(d)).filter((l) => /EEXIST/.test(l));
  t.equal(reported.length, 2, 'each is reported once in error_log');
  t.match(reported.join('\n'), /evilmap: a map, not a program krsifs attached/, 'named, with what it is');
  t.match(reported.join('\n'), /tab\\tname/, 'the tab escaped');
  const r1 = await bash(`echo '!evilmap' > ${M}/process_execution`);
  t.match(r1.stderr, /No such file or directory/, '!evilmap: ENOENT, it is not a program of this file');
  const r2 = await bash(`echo '!*' > ${M}/process_execution`);
  t.equal(r2.exitCode, 0, '!* succeeds: nothing of krsifs is attached');
  t.equal((await bash(`ls '${root}/process_execution/evilmap'`)).exitCode, 0, 'and leaves the map pinned');
  await readFile(`${M}/process_execution`, 'utf8');
  t.equal((await entries(d)).filter((l) => /EEXIST/.test(l)).length, 2, 'read again: not reported again');
});

t.test('one daemon per mountpoint and per pin root', async (t) => {
  const first = await startDaemon();
  let current = first;
  t.teardown(() => cleanup(current));
  const second = await bash(`node ${path.resolve(objDir, '../../dist/lib/cli.js')} mount ${first.mountpoint} --pin-root /sys/fs/bpf/krsifs-test-second-${process.pid}`, { timeout: 20000 });
  t.equal(second.exitCode, 1, 'a second daemon on the same mountpoint exits 1');
  t.match(second.stderr, /another krsifs daemon already serves the mountpoint/, 'saying why');
  const other = await mkdtemp(path.join(os.tmpdir(), 'krsifs-mnt-'));
  t.teardown(() => rm(other, { recursive: true, force: true }));
  const third = await bash(`node ${path.resolve(objDir, '../../dist/lib/cli.js')} mount ${other} --pin-root ${first.pinRoot}`, { timeout: 20000 });
  t.equal(third.exitCode, 1, 'a second daemon on the same pin root exits 1');
  t.match(third.stderr, /another krsifs daemon already serves the pin root/, 'saying why');
  t.match(await readFile(`${first.mountpoint}/hooks`, 'utf8'), /process_execution/, 'the first keeps serving');
  t.equal(first.proc.exitCode, null, 'and is alive');
  await rm(`/sys/fs/bpf/krsifs-test-second-${process.pid}`, { recursive: true, force: true });
  // a killed daemon's locks go with it
  first.proc.kill('SIGKILL');
  await first.exited;
  const again = await startDaemon({ mountpoint: first.mountpoint, args: ['--pin-root', first.pinRoot] });
  current = again;
  t.match(await readFile(`${again.mountpoint}/hooks`, 'utf8'), /process_execution/, 'after a SIGKILL, a new daemon takes over');
});
