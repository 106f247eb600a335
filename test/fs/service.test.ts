// The service around the daemon, on this host: the shipped unit passes
// `systemd-analyze verify` with nothing to say; `krsifs install --root STAGE`
// puts a self-contained project, the objects, the unit (its paths rewritten
// for --prefix) and the policy directory in place and enables the unit there;
// an upgrade replaces the tree whole; the native sd_notify call delivers to a
// real AF_UNIX datagram socket, by path and by abstract name. The unit under a
// real systemd is test/vm/systemd.test.ts's.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cli, root } from '../helpers/daemon.js';
import { notifySocket } from '../helpers/notify-socket.js';
import { sdNotify } from '../../lib/notify.js';
import { DAEMON_NODE_FLAGS } from '../../lib/daemon-node.js';

const run = promisify(execFile);
const UNIT = path.join(root, 'systemd', 'krsifs.service');

/** `systemd-analyze verify`: its exit status and everything it printed (warnings do not change the status). */
async function verify(unit: string): Promise<{ code: number; said: string }> {
  return run('systemd-analyze', ['verify', unit]).then(
    (r) => ({ code: 0, said: (r.stdout + r.stderr).trim() }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, said: (e.stdout + e.stderr).trim() }),
  );
}

t.test('every launcher of the daemon runs node with the daemon\'s flags (lib/daemon-node.ts)', async (t) => {
  const flags = DAEMON_NODE_FLAGS.join(' ');
  const launchers: [string, RegExp][] = [
    ['systemd/krsifs.service', /^ExecStart=\S+ (.*) \S+\/cli\.js mount /m],
    ['scripts/start.sh', /^exec node (.*) dist\/lib\/cli\.js mount /m],
    ['lib/vm/init.sh', /setsid node (.*) dist\/lib\/cli\.js mount /m],
    ['lib/cli.ts', /^#!\/usr\/bin\/env -S node (.*)$/m],
  ];
  for (const [file, line] of launchers) {
    const m = line.exec(await readFile(path.join(root, file), 'utf8'));
    t.equal(m?.[1], flags, `${file} runs node ${flags}`);
  }
  const bench = await readFile(path.join(root, 'bench', 'guest.ts'), 'utf8');
  t.match(bench, `daemon = spawn('node', [${DAEMON_NODE_FLAGS.map((f) => `'${f}'`).join(', ')}, \`\${ROOT}/dist/lib/cli.js\`, 'mount'`, 'the bench measures the daemon as it runs');
  // the built CLI keeps its shebang, so `krsifs mount` from the bin link gets the flags too
  const built = await readFile(cli, 'utf8');
  t.equal(built.split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
});

t.test('the shipped unit passes systemd-analyze verify with nothing to say', async (t) => {
  const v = await verify(UNIT);
  t.equal(v.code, 0, v.said);
  t.equal(v.said, '', 'no warning (a misspelt directive is only a warning: exit 0)');
  const text = await readFile(UNIT, 'utf8');
  t.match(text, /^Type=notify$/m);
  t.match(text, /^ExecStart=\/usr\/bin\/node --max-semi-space-size=1 \/usr\/local\/lib\/krsifs\/dist\/lib\/cli.js mount \/mnt\/krsi --policies \/etc\/krsifs\/policies.d --policies-strict$/m);
  t.match(text, /^Before=sysinit.target shutdown.target$/m);
  t.match(text, /^After=sys-fs-bpf.mount local-fs.target /m);
  t.match(text, /^Restart=on-failure$/m);
  t.match(text, /^WantedBy=sysinit.target$/m);
  for (const d of ['PrivateTmp', 'ProtectSystem', 'ProtectHome', 'PrivateDevices', 'CapabilityBoundingSet', 'MemoryDenyWriteExecute', 'SystemCallFilter']) {
    t.notMatch(text, new RegExp(`^${d}=`, 'm'), `no ${d}=`);
  }
});

t.test('the check is real: a unit with a bad directive or a missing binary is reported', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const text = await readFile(UNIT, 'utf8');
  await writeFile(path.join(dir, 'krsifs.service'), text.replace(/^Type=notify$/m, 'Type=notifyy'));
  t.match((await verify(path.join(dir, 'krsifs.service'))).said, /Failed to parse service type/);
  await writeFile(path.join(dir, 'krsifs.service'), text.replace('/usr/bin/node ', '/usr/bin/no-such-node '));
  const v = await verify(path.join(dir, 'krsifs.service'));
  t.not(v.code, 0);
  t.match(v.said, /no-such-node is not executable/);
});

t.test('krsifs install --root STAGE --prefix: a self-contained tree, the unit rewritten and enabled, the policy directory', async (t) => {
  const stage = await mkdtemp(path.join(os.tmpdir(), 'krsifs-stage-'));
  t.teardown(() => rm(stage, { recursive: true, force: true }));
  const install = () => run(process.execPath, [cli, 'install', '--root', stage, '--prefix', '/opt/kf']);
  const r = await install();
  t.match(r.stderr, /msg=installed dir=\S+\/opt\/kf\/lib\/krsifs objects=\d+/);
  t.match(r.stderr, /msg=enabled unit=krsifs.service/);

  const tree = path.join(stage, 'opt/kf/lib/krsifs');
  for (const f of ['dist/lib/cli.js', 'dist/lib/daemon.js', 'build/Release/krsifs.node', 'lib/catalogue.json', 'deny_exec.o', 'module_allowlist.o', 'krsi_observer.o', 'package.json']) {
    t.ok(existsSync(path.join(tree, f)), f);
  }
  t.notOk(existsSync(path.join(tree, 'dist/test')), 'no tests');
  t.equal((await stat(path.join(tree, 'dist/lib/cli.js'))).mode & 0o777, 0o755);
  t.equal((await stat(path.join(tree, 'deny_exec.o'))).mode & 0o022, 0, 'objects writable by root only (the policy trust check wants it)');
  t.equal(await readlink(path.join(stage, 'opt/kf/bin/krsifs')), '../lib/krsifs/dist/lib/cli.js');

  const unit = await readFile(path.join(stage, 'etc/systemd/system/krsifs.service'), 'utf8');
  const node = await realpath(process.execPath);
  t.match(unit, new RegExp(`^ExecStart=${node} --max-semi-space-size=1 /opt/kf/lib/krsifs/dist/lib/cli.js mount /mnt/krsi --policies /etc/krsifs/policies.d --policies-strict$`, 'm'));
  t.equal(await readlink(path.join(stage, 'etc/systemd/system/sysinit.target.wants/krsifs.service')), '/etc/systemd/system/krsifs.service', 'enabled');
  const v = await verify(path.join(stage, 'etc/systemd/system/krsifs.service'));
  t.equal(v.code, 0, v.said);
  t.equal(v.said, '');
  t.match(await readFile(path.join(stage, 'etc/krsifs/policies.d/README'), 'utf8'), /BEHAVIOUR PATH \[KEY=VALUE \.\.\.\]/);

  // the installed copy runs on its own: the addon, the catalogue, the objects where it looks
  const hooks = await run(process.execPath, [path.join(tree, 'dist/lib/cli.js'), 'hooks', '--json']);
  t.match(hooks.stdout, /"behaviour": "process_execution"/);

  // an upgrade: the tree is replaced whole, nothing left beside it
  await install();
  t.same((await readdir(path.join(stage, 'opt/kf/lib'))).sort(), ['krsifs']);
});

t.test('sd_notify: one datagram to a path socket and to an abstract one; nothing without NOTIFY_SOCKET; errors said', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-notify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const address of [path.join(dir, 'notify'), `@krsifs-notify-${process.pid}`]) {
    const sock = await notifySocket(address);
    t.ok(sdNotify({ READY: 1, STATUS: 'two\nlines' }, address), address);
    t.equal(await sock.waitFor(() => true), 'READY=1\nSTATUS=two lines', `${address}: one datagram, KEY=VALUE lines`);
    sock.close();
  }
  t.equal(sdNotify({ READY: 1 }, undefined), false, 'no socket: nothing sent');
  t.throws(() => sdNotify({ READY: 1 }, 'relative/path'), { code: 'EINVAL' });
  t.throws(() => sdNotify({ READY: 1 }, path.join(dir, 'nobody-listens')), { code: 'ENOENT' });
});
