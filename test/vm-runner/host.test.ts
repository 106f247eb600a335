// The VM runner's checks that need no VM: bad options and a missing QEMU fail
// at once with a clear error, and the console parser splits output right.
import t, { type Test } from 'tap';
import { readdirSync } from 'node:fs';
import { ConsoleParser, parseVmArgs, runInVm, shellQuote, vmMain } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from '../helpers/guest-tap.js';

/** Point the VM cache at an empty directory for this test: what lands there was fetched or built. */
function emptyCache(t: Test): string {
  const dir = t.testdir({});
  const saved = process.env.KRSIFS_VM_CACHE;
  process.env.KRSIFS_VM_CACHE = dir;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KRSIFS_VM_CACHE;
    else process.env.KRSIFS_VM_CACHE = saved;
  });
  return dir;
}
import { aptOptions, BOOKWORM_BACKPORTS, newestFirst, parseKernelSpec, SERIES } from '../../lib/vm/kernel.js';

t.test('a bad --accel is refused before anything is fetched or booted', async (t) => {
  const cache = emptyCache(t);
  await t.rejects(runInVm({ command: 'true', accel: 'xen' }), { code: 'EINVAL', message: /--accel must be tcg or kvm, not 'xen'/ });
  t.same(readdirSync(cache), [], 'nothing was fetched or built first');
  t.throws(() => parseVmArgs(['--accel', 'hvf']), { code: 'EINVAL' });
});

t.test('a missing QEMU names the package to install', async (t) => {
  const saved = process.env.KRSIFS_QEMU;
  process.env.KRSIFS_QEMU = '/nonexistent/qemu-system-x86_64';
  t.teardown(() => {
    if (saved === undefined) delete process.env.KRSIFS_QEMU;
    else process.env.KRSIFS_QEMU = saved;
  });
  const cache = emptyCache(t);
  await t.rejects(runInVm({ command: 'true' }), { code: 'ENOENT', message: /not found \(KRSIFS_QEMU\): apt-get install qemu-system-x86/ });
  t.same(readdirSync(cache), [], 'it fails without fetching the kernel or building the image');
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

t.test("the guest's TAP: only steps that ran and passed count; SKIP, TODO and a bail-out do not", async (t) => {
  // node:test's TAP reporter, as the guest prints it through the serial console (\r\n)
  const out = [
    'TAP version 13',
    '# \\# hardening: a note',
    '# Subtest: 1. passes',
    'ok 1 - 1. passes',
    '  ---',
    '  duration_ms: 12.6',
    '  ...',
    '# Subtest: 2. skipped',
    'ok 2 - 2. skipped # SKIP no module',
    '  ---',
    '  duration_ms: 0.2',
    '  ...',
    '# Subtest: 3. todo',
    'not ok 3 - 3. todo # TODO later',
    '  ---',
    '  duration_ms: 0.3',
    "  error: 'x'",
    '  ...',
    '# Subtest: 4. fails',
    'not ok 4 - 4. fails',
    '  ---',
    '  duration_ms: 1.2',
    "  error: 'one is two'",
    '  ...',
    '# Subtest: 5. has a subtest',
    '    # Subtest: inner',
    '    ok 1 - inner',
    '      ---',
    '      duration_ms: 0.1',
    '      ...',
    '    1..1',
    'ok 5 - 5. has a subtest',
    '  ---',
    '  duration_ms: 0.5',
    '  ...',
    '1..5',
    '# tests 6',
  ].join('\r\n') + '\r\n';
  const r = parseGuestTap(out);
  t.same(r.map((x) => [x.name, x.ok]), [
    ['1. passes', true], ['2. skipped', false], ['3. todo', false], ['4. fails', false], ['5. has a subtest', true],
  ], 'top-level steps only; a skipped or TODO step is not a pass');
  t.match(r[1], { notPassed: 'skipped in the guest: no module' }, 'and says it was skipped');
  t.match(r[2], { notPassed: 'marked TODO in the guest: later' });
  t.match(r[3], { diag: { error: 'one is two' } }, 'a failure keeps its diagnostics');
  t.equal(durationMs(r[0]!), 13, "a step's duration");
  const bail = parseGuestTap('TAP version 13\nok 1 - 1. passes\nBail out! the daemon died\n');
  t.same(bail.map((x) => x.ok), [true, false], 'a bail-out is a failure');
  t.match(bail[1], { name: /bailed out: the daemon died/ });
});

t.test('--kernel: the series, a package name, stock; anything else is refused naming what exists', async (t) => {
  t.match(parseKernelSpec('6.1'), { kind: 'series', series: { name: '6.1' } });
  t.match(parseKernelSpec('6.12'), { kind: 'series', series: { name: '6.12' } });
  t.same(parseKernelSpec(undefined), { kind: 'stock' });
  t.same(parseKernelSpec('stock'), { kind: 'stock' });
  t.same(parseKernelSpec('linux-image-6.12.95+deb12-cloud-amd64'), { kind: 'package', pkg: 'linux-image-6.12.95+deb12-cloud-amd64' });
  for (const bad of ['6.6', '6', 'linux-image-6.1.0-57-amd64', 'latest']) {
    t.throws(() => parseKernelSpec(bad), { code: 'EINVAL', message: new RegExp(`unknown kernel '${bad.replace(/\./g, '\\.')}': the series are 6\\.1 .*6\\.12 `) }, bad);
  }
  t.throws(() => parseVmArgs(['--kernel', '5.10']), { code: 'EINVAL', message: /unknown kernel '5\.10'/ });
  t.equal(parseVmArgs(['--kernel=6.12', '--lsm', 'lockdown,capability']).kernel, '6.12');
  t.throws(() => parseVmArgs(['--lsm', 'bpf; reboot']), { code: 'EINVAL', message: /--lsm needs a comma-separated list/ });
  const stderr: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => (stderr.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await vmMain(['--kernel', '6.6', '--', 'true']);
  } finally {
    process.stderr.write = write;
  }
  t.equal(code, 2, 'krsifs vm --kernel 6.6 is a usage error');
  t.match(stderr.join(''), /unknown kernel '6\.6': the series are 6\.1 \(Debian 12's kernel \(bookworm\)\), 6\.12 \(bookworm-backports\)/);
});

t.test('the newest kernel of a series comes first, by the numbers of its version', async (t) => {
  t.same(
    newestFirst(['linux-image-6.12.90+deb12-cloud-amd64', 'linux-image-6.12.95+deb12-cloud-amd64', 'linux-image-6.12.90+deb12.1-cloud-amd64', 'linux-image-6.12.100+deb12-cloud-amd64']),
    ['linux-image-6.12.100+deb12-cloud-amd64', 'linux-image-6.12.95+deb12-cloud-amd64', 'linux-image-6.12.90+deb12.1-cloud-amd64', 'linux-image-6.12.90+deb12-cloud-amd64'],
  );
  t.same(newestFirst(['linux-image-6.1.0-9-cloud-amd64', 'linux-image-6.1.0-57-cloud-amd64']), ['linux-image-6.1.0-57-cloud-amd64', 'linux-image-6.1.0-9-cloud-amd64']);
  const s612 = SERIES.find((s) => s.name === '6.12')!;
  t.ok(s612.pattern.test('linux-image-6.12.95+deb12-cloud-amd64'));
  for (const no of ['linux-image-6.12.95+deb12-cloud-amd64-dbg', 'linux-image-6.12.95+deb12-cloud-amd64-unsigned', 'linux-image-6.1.0-57-cloud-amd64']) t.notOk(s612.pattern.test(no), no);
  t.notOk(SERIES.find((s) => s.name === '6.1')!.pattern.test('linux-image-6.12.95+deb12-cloud-amd64'), '6.1 is not a prefix of 6.12');
});

t.test("the private apt source lives in the cache and reads none of the host's sources", async (t) => {
  const o = aptOptions('/c', BOOKWORM_BACKPORTS).join(' ');
  t.match(o, /Dir::Etc::SourceList=\/c\/apt\/bookworm-backports\/sources\.list/);
  t.match(o, /Dir::Etc::SourceParts=\/dev\/null/);
  t.match(o, /Dir::State::Lists=\/c\/apt\/bookworm-backports\/lists/);
  t.match(BOOKWORM_BACKPORTS.lines.join('\n'), /^deb \[arch=amd64.*\] http:\/\/deb\.debian\.org\/debian bookworm-backports main$/);
  t.notMatch(aptOptions('/c', 'host').join(' '), /Dir::/, 'the host source is apt as configured');
});
