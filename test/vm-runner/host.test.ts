// The VM runner's checks that need no VM: bad options and a missing QEMU fail
// at once with a clear error, and the console parser splits output right.
import t from 'tap';
import { ConsoleParser, parseVmArgs, runInVm, shellQuote, vmMain } from '../../lib/vm/index.js';

t.test('a bad --accel is refused before anything is fetched or booted', async (t) => {
  const t0 = Date.now();
  await t.rejects(runInVm({ command: 'true', accel: 'xen' }), { code: 'EINVAL', message: /--accel must be tcg or kvm, not 'xen'/ });
  t.ok(Date.now() - t0 < 2000, 'it fails fast');
  t.throws(() => parseVmArgs(['--accel', 'hvf']), { code: 'EINVAL' });
});

t.test('a missing QEMU names the package to install', async (t) => {
  const saved = process.env.KRSIFS_QEMU;
  process.env.KRSIFS_QEMU = '/nonexistent/qemu-system-x86_64';
  t.teardown(() => {
    if (saved === undefined) delete process.env.KRSIFS_QEMU;
    else process.env.KRSIFS_QEMU = saved;
  });
  const t0 = Date.now();
  await t.rejects(runInVm({ command: 'true' }), { code: 'ENOENT', message: /not found \(KRSIFS_QEMU\): apt-get install qemu-system-x86/ });
  t.ok(Date.now() - t0 < 2000, 'it fails fast, without fetching the kernel');
  const stderr: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await vmMain(['--', 'true']);
  } finally {
    process.stderr.write = write;
  }
  t.equal(code, 125, 'krsifs vm exits 125 when the VM cannot run');
  t.match(stderr.join(''), /apt-get install qemu-system-x86/, 'and says what to install');
});

t.test('options and the command words', async (t) => {
  const a = parseVmArgs(['--accel=kvm', '--timeout', '30', '--no-mount', '--', 'echo', "it's", 'a b']);
  t.equal(a.accel, 'kvm');
  t.equal(a.timeoutSec, 30);
  t.equal(a.mount, false);
  t.equal(a.command, `echo 'it'\\''s' 'a b'`, 'several words are quoted like exec would see them');
  t.equal(parseVmArgs(['--', 'cat /proc/mounts | grep fuse']).command, 'cat /proc/mounts | grep fuse', 'one word is a script as is');
  t.equal(parseVmArgs([]).command, undefined, 'no command: a shell');
  t.throws(() => parseVmArgs(['--timeout', 'soon']), { code: 'EINVAL', message: /--timeout needs a number of seconds/ });
  t.throws(() => parseVmArgs(['--frobnicate']), { code: 'EINVAL', message: /unknown option --frobnicate/ });
  t.equal(shellQuote('/mnt/krsi/file_open'), '/mnt/krsi/file_open');
});

t.test('the console parser passes the command output through and catches the marker anywhere', async (t) => {
  const console = [
    '[    0.000000] Linux version 6.1.0 (noise before boot)\r\n',
    'krsifs-vm/abc: booted\n',
    'krsifs-vm/abc: mounted krsifs at /mnt/krsi\n',
    'krsifs-vm/abc: running\n',
    'out\r\nkrsifs-vm/OTHER: not ours\n\x00\xffbytes',
    'krsifs-vm/abc: exit 7\n',
    'reboot: Power down\n',
  ].join('');
  // feed it in every chunk size from 1 byte up: the split must never matter
  for (const size of [1, 2, 3, 7, 64, console.length]) {
    const out: Buffer[] = [];
    const msgs: string[] = [];
    let booted = 0;
    const p = new ConsoleParser('abc', { output: (b) => out.push(b), message: (m) => msgs.push(m), booted: () => booted++ });
    const bytes = Buffer.from(console, 'latin1');
    for (let i = 0; i < bytes.length; i += size) p.feed(bytes.subarray(i, i + size));
    t.equal(booted, 1, `booted once (chunks of ${size})`);
    t.equal(p.exitCode, 7, 'the exit status comes from the marker, even after a line with no newline');
    t.same(Buffer.concat(out), Buffer.from('out\r\nkrsifs-vm/OTHER: not ours\n\x00\xffbytes', 'latin1'), 'output bytes pass unchanged, boot noise and power-off do not');
    t.same(msgs, ['mounted krsifs at /mnt/krsi', 'running'], 'the init lines are messages');
  }
});

t.test('a kernel package apt cannot fetch is a clear error', async (t) => {
  const saved = { pkg: process.env.KRSIFS_VM_KERNEL_PKG, cache: process.env.KRSIFS_VM_CACHE };
  process.env.KRSIFS_VM_KERNEL_PKG = 'linux-image-0.0.0-99-nosuch-amd64';
  process.env.KRSIFS_VM_CACHE = t.testdir({});
  t.teardown(() => {
    for (const [k, v] of [['KRSIFS_VM_KERNEL_PKG', saved.pkg], ['KRSIFS_VM_CACHE', saved.cache]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  await t.rejects(runInVm({ command: 'true' }), {
    code: 'EIO',
    message: /^fetch kernel: apt-get download linux-image-0\.0\.0-99-nosuch-amd64 failed: .*; the VM needs Debian's archive$/,
  });
});
