// The policy directory with a real `krsifs mount` on this host. The host's
// kernel refuses BPF LSM programs (EPERM), so what is proven here is
// everything up to the kernel and the daemon's behaviour around it: each bad
// line recorded with its file and line, the mount still served, status
// exiting 1 and naming each line, --policies-strict exiting 1 before mounting,
// sd_notify (READY=1 only after the mount and the policies; RELOADING=1 /
// READY=1 around a SIGHUP), and log lines fit for the journal. That the
// policies really enforce is test/vm/boot-policies.test.ts's to prove.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanup, cli, isMounted, objDir, spawnDaemon, startDaemon, until, type Daemon } from '../helpers/daemon.js';
import { notifySocket } from '../helpers/notify-socket.js';
import { reportPath, type Report } from '../../lib/policies/report.js';

const run = promisify(execFile);
let tmp: string;
const daemons: Daemon[] = [];
t.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'krsifs-policies-fs-'));
});
t.teardown(async () => {
  for (const d of daemons) {
    await cleanup(d);
    await rm(reportPath(d.pinRoot), { force: true });
  }
  await rm(tmp, { recursive: true, force: true });
});

/** A policy directory of root's, mode 0755, with these .conf files (0644). */
async function policies(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmp, 'policies-'));
  await chmod(dir, 0o755);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text, { mode: 0o644 });
  return dir;
}
async function status(dir: string, pinRoot: string, json = false): Promise<{ code: number; out: string }> {
  const r = await run(process.execPath, [cli, 'status', '--policies', dir, '--pin-root', pinRoot, ...(json ? ['--json'] : [])]).then(
    (x) => ({ code: 0, out: x.stdout }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
  return r;
}
async function report(pinRoot: string): Promise<Report> {
  return JSON.parse(await readFile(reportPath(pinRoot), 'utf8')) as Report;
}

t.test('every failing line is in error_log with its file and line; the others still run; the mount comes up', async (t) => {
  const dir = await policies({
    '10-exec.conf': `# the host refuses the load itself (EPERM)\nprocess_execution ${objDir}/deny_exec.o target=/opt/tool\n`,
    '20-bad.conf': 'frob deny_exec.o\nfile_open !deny_path\nfile_open missing.o target=/x\n',
    '30-loose.conf': `file_open ${objDir}/deny_path.o\n`,
  });
  await chmod(path.join(dir, '30-loose.conf'), 0o666);
  const d = await startDaemon({ args: ['--policies', dir] });
  daemons.push(d);
  const errors = await readFile(path.join(d.mountpoint, 'error_log'), 'utf8');
  const at = (f: string, n: number) => `${path.join(dir, f)}:${n}: `;
  t.match(errors, `process_execution: "process_execution ${objDir}/deny_exec.o target=/opt/tool": EPERM (Operation not permitted): ${at('10-exec.conf', 2)}load program deny_exec`);
  t.match(errors, `policies: "frob deny_exec.o": EINVAL (Invalid argument): ${at('20-bad.conf', 1)}no behaviour file named frob here`);
  t.match(errors, `file_open: "file_open !deny_path": EINVAL (Invalid argument): ${at('20-bad.conf', 2)}only PATH [KEY=VALUE ...] lines belong in a policy file`);
  t.match(errors, `file_open: "file_open missing.o target=/x": ENOENT (No such file or directory): ${at('20-bad.conf', 3)}object ${path.join(dir, 'missing.o')}: No such file or directory`, 'a relative path, against the .conf\'s directory');
  t.match(errors, `policies: (no line): EPERM (Operation not permitted): policy file ${path.join(dir, '30-loose.conf')} is writable by its group and others (mode 0666)`);
  t.match(d.log(), /level=warn msg="policy line failed" file=process_execution line="process_execution .*deny_exec.o target=\/opt\/tool" code=EPERM/);
  t.match(d.log(), /level=warn msg="policies applied" generation=1 dir=\S+ files=2 declarations=2 kept=0 attached=0 replaced=0 failed=2 problems=3 pruned=0/);
  t.ok(d.log().indexOf('msg="policies applied"') < d.log().indexOf('msg=mounted '), 'applied before the mount');
  t.ok(await isMounted(d.mountpoint));

  const s = await status(dir, d.pinRoot);
  t.equal(s.code, 1, s.out);
  t.match(s.out, new RegExp(`declared {2}${at('10-exec.conf', 2).slice(0, -2)} {2}process_execution .*\\n\\s+NOT IN FORCE: deny_exec is not attached; the daemon's last attempt failed: EPERM: load program deny_exec`));
  t.match(s.out, new RegExp(`NOT IN FORCE: ENOENT: object ${path.join(dir, 'missing.o')}: No such file or directory`));
  t.match(s.out, /problem {3}\S+20-bad.conf:1: "frob deny_exec.o": EINVAL: no behaviour file named frob here/);
  t.match(s.out, /problem {3}\S+30-loose.conf: EPERM: policy file .* is writable by its group and others/);
  t.match(s.out, /status: the declared policy is NOT in force \(5 lines not in force\)\n$/);
  const j = JSON.parse((await status(dir, d.pinRoot, true)).out) as { ok: boolean; daemon: { pid: number; running: boolean }; problems: unknown[] };
  t.equal(j.ok, false);
  t.match(j.daemon, { pid: d.proc.pid, running: true });
  t.equal(j.problems.length, 3);
});

t.test('--policies-strict: a failing line makes the daemon exit 1 before mounting, and it never says READY', async (t) => {
  const dir = await policies({ '10.conf': `process_execution ${objDir}/deny_exec.o target=/opt/tool\n` });
  const sock = await notifySocket(path.join(tmp, 'strict.sock'));
  t.teardown(() => sock.close());
  process.env.NOTIFY_SOCKET = sock.address;
  const mountpoint = await mkdtemp(path.join(tmp, 'mnt-'));
  const pinRoot = `/sys/fs/bpf/krsifs-test-${process.pid}-strict`;
  t.teardown(() => rm(pinRoot, { recursive: true, force: true }));
  const err = await startDaemon({ mountpoint, args: ['--policies', dir, '--policies-strict', '--pin-root', pinRoot] }).then(
    () => null,
    (e: Error) => e,
  );
  delete process.env.NOTIFY_SOCKET;
  t.ok(err, 'the daemon did not serve');
  t.match(err?.message, /daemon exited \(1\) before mounting/);
  t.match(err?.message, /krsifs: --policies-strict: 1 of the policy lines in \S+ failed \(the ones that applied stay attached; krsifs status says which failed\); first: \S+10.conf:1: load program deny_exec: operation not permitted.* \(EPERM\)/);
  t.notMatch(err?.message, /msg=mounted /);
  t.notOk(await isMounted(mountpoint));
  t.notOk(sock.messages.some((m) => m.split('\n').includes('READY=1')), 'no READY=1');
});

t.test('sd_notify: READY=1 once mounted with the policies applied; RELOADING=1 then READY=1 around SIGHUP; STOPPING=1', async (t) => {
  const dir = await policies({ '10.conf': `process_execution ${objDir}/deny_exec.o target=/opt/tool\n` });
  // an abstract name, as systemd gives
  const sock = await notifySocket(`@krsifs-test-${process.pid}`);
  t.teardown(() => sock.close());
  process.env.NOTIFY_SOCKET = sock.address;
  const d = await startDaemon({ args: ['--policies', dir] });
  delete process.env.NOTIFY_SOCKET;
  daemons.push(d);
  const ready = await sock.waitFor((m) => m.split('\n').includes('READY=1'));
  t.ok(await isMounted(d.mountpoint), 'mounted when READY=1 came');
  t.match(ready, /^READY=1\nSTATUS=serving; policies: 0 in force, 1 failed \(krsifs status\)$/);
  t.equal((await report(d.pinRoot)).generation, 1, 'the policies were applied before');

  const n = sock.messages.length;
  await writeFile(path.join(dir, '20.conf'), 'frob x.o\n', { mode: 0o644 });
  d.proc.kill('SIGHUP');
  t.equal(await sock.waitFor((m) => m === 'RELOADING=1', n), 'RELOADING=1');
  const again = await sock.waitFor((m) => m.startsWith('READY=1'), n);
  t.match(again, /STATUS=serving; policies: 0 in force, 2 failed/);
  const r = await report(d.pinRoot);
  t.equal(r.generation, 2);
  t.equal(r.problems.length, 1);
  t.ok(sock.messages.indexOf('RELOADING=1', n) < sock.messages.indexOf(again, n), 'RELOADING=1 first');
  t.ok(await isMounted(d.mountpoint), 'a SIGHUP does not stop the daemon');

  d.proc.kill('SIGTERM');
  t.equal(await sock.waitFor((m) => m === 'STOPPING=1', n), 'STOPPING=1');
  t.equal(await d.exited, 0);
});

t.test('SIGHUPs from the moment it starts: the daemon lives, serves, and reads the directory again once it serves', async (t) => {
  const dir = await policies({ '10.conf': `process_execution ${objDir}/deny_exec.o target=/opt/tool\n` });
  const d = await spawnDaemon({ args: ['--policies', dir] });
  daemons.push(d);
  let dead = false;
  void d.exited.then(() => (dead = true));
  // one every 10 ms from its first line on (before that, node has not run a line of
  // krsifs: no process catches a signal before it asks to), through the policies'
  // apply, the mount and the lines after it
  await until('its first line', () => dead || /msg="probe: /.test(d.log()));
  let sent = 0;
  await until('mounted', () => {
    if (dead) return true;
    d.proc.kill('SIGHUP');
    sent++;
    return /msg=mounted /.test(d.log());
  });
  t.notOk(dead, `a SIGHUP while starting killed the daemon:\n${d.log()}`);
  t.ok(sent > 3, `SIGHUPs came while it started (${sent})`);
  await until('the reload after the mount', async () => dead || (existsSync(reportPath(d.pinRoot)) && (await report(d.pinRoot)).generation >= 2));
  t.notOk(dead, d.log());
  t.match(d.log(), /msg="SIGHUP came while starting: reading the policy directory again"/);
  t.ok(d.log().indexOf('msg=mounted ') < d.log().indexOf('msg="SIGHUP came while starting'), 'carried out once it serves');
  t.ok(await isMounted(d.mountpoint));
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'exit 0 (null: killed by a signal)');
  t.notOk(await isMounted(d.mountpoint), 'unmounted');
});

t.test('SIGTERM while starting: the start-up ends there, exit 0, no mount left', async (t) => {
  const dir = await policies({ '10.conf': `process_execution ${objDir}/deny_exec.o target=/opt/tool\n` });
  const d = await spawnDaemon({ args: ['--policies', dir] });
  daemons.push(d);
  await until('its first line', () => /msg="probe: /.test(d.log()));
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'stopped as asked, not killed by the default action (exit code null)');
  t.match(d.log(), /msg="stopping before the mount was made" signal=SIGTERM/);
  t.notMatch(d.log(), /msg=mounted /);
  t.notOk(await isMounted(d.mountpoint));
});

t.test("under the journal: no time= of the daemon's own, a priority prefix per line", async (t) => {
  const mountpoint = await mkdtemp(path.join(tmp, 'mnt-'));
  const pinRoot = `/sys/fs/bpf/krsifs-test-${process.pid}-journal`;
  const logFile = path.join(tmp, 'journal.log');
  const fh = await open(logFile, 'w');
  const st = await stat(logFile, { bigint: true });
  // JOURNAL_STREAM names the stream systemd connected: here, the daemon's stderr file
  const proc = spawn(process.execPath, [cli, 'mount', mountpoint, '--pin-root', pinRoot, '--policies', ''], {
    stdio: ['ignore', 'ignore', fh.fd],
    env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
  t.teardown(async () => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    await fh.close();
    await rm(pinRoot, { recursive: true, force: true });
  });
  const until = Date.now() + 20_000;
  while (!(await readFile(logFile, 'utf8')).includes('msg=mounted ') && Date.now() < until && proc.exitCode === null) {
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGTERM');
  t.equal(await exited, 0);
  const lines = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean);
  t.ok(lines.some((l) => l.startsWith('<6>level=info msg=mounted ')), 'the mounted line at priority 6, without time=');
  t.ok(lines.some((l) => l.startsWith('<4>level=warn msg="probe: ')), 'warnings at priority 4');
  t.same(lines.filter((l) => !/^<[3467]>level=/.test(l)), [], 'every line: a priority, then level=, no time=');

  // a JOURNAL_STREAM that is not this stderr (inherited by a child): ordinary lines
  const other = await run(process.execPath, [cli, 'mount', '/nonexistent/x/y', '--policies', ''], {
    env: { ...process.env, JOURNAL_STREAM: '1:1' },
  }).catch((e: { stderr: string }) => e);
  t.match(other.stderr, /^time=\S+ level=/);
});

t.test('--policies "" turns the directory off; status with no directory is in force', async (t) => {
  const d = await startDaemon({ args: ['--policies', ''] });
  daemons.push(d);
  t.notMatch(d.log(), /policies applied/);
  const s = await status('', d.pinRoot);
  t.equal(s.code, 0, s.out);
  t.match(s.out, /^policies: none \(no policy directory\)/);
});
