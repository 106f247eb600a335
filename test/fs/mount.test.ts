// The mount's life: files, modes, listings, clean stop, stale-mount recovery.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanup, cli, isMounted, startDaemon, until } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const behaviours = [
  'process_execution', 'process_execution_committed', 'file_open', 'file_deletion', 'file_rename',
  'memory_protection', 'module_load', 'module_load_data', 'filesystem_mount', 'process_signal', 'process_trace', 'socket_connect', 'socket_bind', 'bpf_syscall',
  'credential_change',
];

t.test('a fresh mount has a file per behaviour, hooks and error_log, all empty but hooks', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  t.ok(await isMounted(d.mountpoint), 'listed in /proc/self/mountinfo');
  const names = (await readdir(d.mountpoint)).sort();
  // every behaviour of the default catalogue resolves on this kernel (its BTF has all the hooks)
  t.same(names, [...behaviours, 'hooks', 'error_log', 'events', 'stats'].sort());
  for (const b of behaviours) {
    const r = await bash(`cat ${d.mountpoint}/${b}`);
    t.equal(r.exitCode, 0, `cat ${b} succeeds`);
    t.equal(r.stdout, '', `${b} lists nothing`);
  }
  const hooks = await bash(`cat ${d.mountpoint}/hooks`);
  t.match(hooks.stdout, /^process_execution\tbprm_check_security\tavailable$/m, 'cat works on the hooks file');
  t.equal((await bash(`cat ${d.mountpoint}/error_log`)).stdout, '');
  t.equal((await bash(`cat ${d.mountpoint}/stats`)).stdout, '', 'stats: no line without programs attached');
  const w = await bash(`echo x > ${d.mountpoint}/stats`);
  t.not(w.exitCode, 0, 'stats is read-only, for root too');
  t.match(d.log(), /level=info msg=mounted /, 'structured log line on stderr');
});

t.test('ls -l: behaviour files 0600, hooks 0444, error_log 0600, owner root, sizes of what a read returns, sensible times', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const ls = await bash(`ls -ln ${d.mountpoint}`);
  // ls pads the size column: the widest size decides its width
  t.match(ls.stdout, /^-rw------- 1 0 0 +65536 .* process_execution$/m, 'a behaviour file: a nominal size (its listing is read from the kernel only when read)');
  t.match(ls.stdout, new RegExp(`^-r--r--r-- 1 0 0 +${Buffer.byteLength((await bash(`cat ${d.mountpoint}/hooks`)).stdout)} .* hooks$`, 'm'), 'hooks: its size is its length');
  t.match(ls.stdout, /^-rw------- 1 0 0 +0 .* error_log$/m);
  t.match(ls.stdout, /^-r--r--r-- 1 0 0 +65536 .* stats$/m, 'stats: 0444, a nominal size (read from the kernel when read)');
  const st = await stat(`${d.mountpoint}/process_execution`);
  t.ok(Math.abs(st.mtimeMs - Date.now()) < 60_000, 'mtime is the mount time, not 1970');
});

t.test('SIGTERM unmounts cleanly and exits 0', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0, 'exit status 0');
  t.notOk(await isMounted(d.mountpoint), 'gone from mountinfo');
  t.match(d.log(), /msg=unmounted/);
});

t.test('SIGINT too', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  d.proc.kill('SIGINT');
  t.equal(await d.exited, 0);
  t.notOk(await isMounted(d.mountpoint));
});

t.test('a stale mount left by a SIGKILLed daemon is cleaned up by the next one', async (t) => {
  const first = await startDaemon();
  first.proc.kill('SIGKILL');
  await first.exited;
  const dead = await bash(`ls ${first.mountpoint}`);
  t.match(dead.stderr, /Transport endpoint is not connected/, 'the dead mount says ENOTCONN');
  const second = await startDaemon({ mountpoint: first.mountpoint });
  t.teardown(() => cleanup(second));
  t.match(second.log(), /msg="detached a stale mount left by a dead daemon"/);
  const r = await bash(`cat ${second.mountpoint}/process_execution`);
  t.equal(r.exitCode, 0, 'the new mount serves');
});

t.test('a bad --catalogue is refused with a clear error before mounting', async (t) => {
  const r = await bash(`node dist/lib/cli.js mount /tmp/krsifs-never-mounted --catalogue /etc/hostname`);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /catalogue \/etc\/hostname: not valid JSON/);
});

t.test('an idle daemon has not loaded child_process or perf_hooks (2 MiB of its RSS): only where they are used', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-modules-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // node's own list of the built-in modules it has loaded, written as it grows
  const preload = path.join(dir, 'modules.cjs');
  // (written aside and renamed in: a reader never sees a half-written list)
  await writeFile(preload, "const fs = require('fs'); setInterval(() => { fs.writeFileSync(process.env.MODULES_OUT + '.tmp', process.moduleLoadList.join('\\n')); fs.renameSync(process.env.MODULES_OUT + '.tmp', process.env.MODULES_OUT); }, 100).unref();\n");
  const loaded = async (monitor: string, name: string) => {
    const [mnt, out, pins] = [path.join(dir, `${name}-mnt`), path.join(dir, name), `/sys/fs/bpf/krsifs-test-${process.pid}-${name}`];
    await mkdir(mnt);
    // env -i: tap's process tracking puts its own hooks (which load child_process) into a child's environment
    const d = spawn('env', ['-i', `PATH=${process.env.PATH}`, `MODULES_OUT=${out}`, `KRSIFS_LOOP_MONITOR=${monitor}`,
      process.execPath, '-r', preload, cli, 'mount', mnt, '--pin-root', pins], { stdio: 'ignore' });
    const exited = new Promise((r) => d.on('exit', r));
    try {
      await until(`the daemon on ${mnt}`, () => isMounted(mnt), 20_000);
      const list = async () => (await readFile(out, 'utf8').catch(() => '')).split('\n');
      // the list is written every 100 ms: one from after the mount, later still on a loaded machine
      await until(`${name}: the daemon's module list`, async () => (await list()).includes('NativeModule fs/promises'), 15_000);
      // the monitor's module comes after the mount: waited for
      if (monitor) await until('perf_hooks in the monitored daemon\'s list', async () => (await list()).includes('NativeModule perf_hooks'), 15_000);
      else await new Promise((r) => setTimeout(r, 1500)); // idle, mounted
      return list();
    } finally {
      d.kill('SIGTERM');
      await exited;
      await rm(pins, { recursive: true, force: true });
    }
  };
  const has = (list: string[], module: string) => list.includes(`NativeModule ${module}`);
  const monitored = await loaded('1', 'monitored');
  t.ok(has(monitored, 'perf_hooks'), 'premise: the list shows a module loaded after the mount (the opt-in loop monitor)');
  const idle = await loaded('', 'idle');
  t.ok(has(idle, 'fs/promises'), 'the list is the daemon\'s');
  t.notOk(has(idle, 'child_process'), 'no child_process (mount(8) of bpffs loads it, when /sys/fs/bpf is not one)');
  t.notOk(has(idle, 'perf_hooks'), 'no perf_hooks (the loop monitor loads it, when asked for)');
});
