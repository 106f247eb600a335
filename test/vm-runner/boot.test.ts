// The runner's failure paths that need the cached kernel and image but no
// real boot. The real boots, one per test kernel, are test/vm/kernels.test.ts:
// it checks there that the guest runs the kernel asked for with BPF LSM
// active, has node, bpftool and fuse, and hands the command's exit status back.
import t, { type Test } from 'tap';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runInVm } from '../../lib/vm/index.js';
import { Progress } from '../../lib/vm/progress.js';

/** A fake QEMU: a script that prints something (a kernel's line unless told) and then behaves as told. */
function fakeQemu(t: Test, body: string, first = 'echo "[    0.1] fake kernel line"'): string {
  const dir = t.testdir({});
  const f = path.join(dir, 'qemu');
  writeFileSync(f, `#!/bin/sh\n${first}\n${body}\n`);
  chmodSync(f, 0o755);
  const saved = process.env.KRSIFS_QEMU;
  process.env.KRSIFS_QEMU = f;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KRSIFS_QEMU;
    else process.env.KRSIFS_QEMU = saved;
  });
  return f;
}

/** Sets $n to the run's nonce, in a fake QEMU's script. */
const marker = 'n="$(echo "$@" | sed "s/.*krsifs_nonce=\\([0-9a-f]*\\).*/\\1/")"';

/** A Progress whose lines the test can read. */
function said(): { lines: string[]; progress: Progress } {
  const lines: string[] = [];
  const out = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  return { lines, progress: new Progress(out) };
}

t.test('qemu dying before the marker is an error with the console tail', async (t) => {
  fakeQemu(t, 'echo "qemu: could not load kernel" >&2; exit 1');
  await t.rejects(runInVm({ command: 'true' }), {
    code: 'EIO',
    message: /qemu exited \(status 1\) before the guest booted[^]*fake kernel line[^]*could not load kernel/,
  });
});

t.test('a guest that never boots is killed at the boot timeout', async (t) => {
  // a QEMU that would end by itself after 60 s, and then write "slept"
  const f = fakeQemu(t, 'd="$(dirname "$0")"; echo $$ >> "$d/pid"; sleep 60 >/dev/null 2>&1 </dev/null & echo $! > "$d/sleep"; wait; echo slept > "$d/slept"');
  const dir = path.dirname(f);
  t.teardown(() => {
    try {
      process.kill(Number(readFileSync(path.join(dir, 'sleep'), 'utf8')), 'SIGKILL');
    } catch {
      // gone
    }
  });
  await t.rejects(runInVm({ command: 'true', bootTimeoutSec: 2 }), { code: 'ETIMEDOUT', message: /did not boot in 2 s \(no "booted" line\)\n[^]*fake kernel line/ });
  t.equal(readFileSync(path.join(dir, 'pid'), 'utf8').split('\n').filter(Boolean).length, 1, 'the kernel had printed: booted once, not again');
  // nothing hangs: by the time runInVm has answered, QEMU is gone and was
  // killed, not waited out (it never got to write "slept")
  const pid = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
  t.ok(pid > 0, `the fake QEMU ran (pid ${pid})`);
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'it is gone');
  t.notOk(existsSync(path.join(dir, 'slept')), 'killed: it did not end by itself');
});

t.test('a hang in the firmware, before any kernel output, is booted once more', async (t) => {
  // SeaBIOS's lines and nothing after them, the first time; a guest that boots and exits 0 the second
  const f = fakeQemu(
    t,
    `d="$(dirname "$0")"; echo x >> "$d/spawns"; ${marker}
if [ "$(wc -l < "$d/spawns")" -eq 1 ]; then exec sleep 60 >/dev/null 2>&1 </dev/null; fi
echo "[    0.1] fake kernel line"; echo "krsifs-vm/$n: booted"; echo "krsifs-vm/$n: exit 0"; exit 0`,
    'echo "SeaBIOS (version 1.16.2-debian-1.16.2-1)"; echo "Booting from ROM..."',
  );
  const { lines, progress } = said();
  const r = await runInVm({ command: 'true', bootTimeoutSec: 2, progress });
  t.equal(r.exitCode, 0, 'the second boot ran the command');
  t.equal(readFileSync(path.join(path.dirname(f), 'spawns'), 'utf8').split('\n').filter(Boolean).length, 2, 'QEMU was started twice');
  t.match(lines.join('\n'), /hung in the firmware before the kernel ran; booting once more/, 'the retry is said');
});

t.test('a firmware hang twice fails, and says where it hung', async (t) => {
  fakeQemu(t, 'exec sleep 60 >/dev/null 2>&1 </dev/null', 'echo "Booting from ROM..."');
  await t.rejects(runInVm({ command: 'true', bootTimeoutSec: 2 }), {
    code: 'ETIMEDOUT',
    message: /did not boot in 2 s \(no "booted" line\); the console shows no kernel output: QEMU hung in the firmware[^]*Booting from ROM/,
  });
});

t.test('a kernel panic before the init ran is booted once more', async (t) => {
  // the 6.12 panic seen under TCG (its last lines), QEMU ending with status 0 (panic=-1, -no-reboot), the first time
  const f = fakeQemu(
    t,
    `d="$(dirname "$0")"; echo x >> "$d/spawns"; ${marker}
if [ "$(wc -l < "$d/spawns")" -eq 1 ]; then echo "[    2.588744] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI"; echo "[    2.589204] Kernel panic - not syncing: Fatal exception in interrupt"; exit 0; fi
echo "krsifs-vm/$n: booted"; echo "krsifs-vm/$n: exit 0"; exit 0`,
  );
  const { lines, progress } = said();
  const r = await runInVm({ command: 'true', progress });
  t.equal(r.exitCode, 0, 'the second boot ran the command');
  t.equal(readFileSync(path.join(path.dirname(f), 'spawns'), 'utf8').split('\n').filter(Boolean).length, 2, 'QEMU was started twice');
  t.match(lines.join('\n'), /the kernel panicked before the init ran; booting once more/, 'the retry is said');
});

t.test('a panic that hangs instead of ending QEMU is booted once more at the boot timeout', async (t) => {
  const f = fakeQemu(
    t,
    `d="$(dirname "$0")"; echo x >> "$d/spawns"; ${marker}
if [ "$(wc -l < "$d/spawns")" -eq 1 ]; then echo "[    2.589204] Kernel panic - not syncing: Fatal exception in interrupt"; exec sleep 60 >/dev/null 2>&1 </dev/null; fi
echo "krsifs-vm/$n: booted"; echo "krsifs-vm/$n: exit 0"; exit 0`,
  );
  const { lines, progress } = said();
  const r = await runInVm({ command: 'true', bootTimeoutSec: 2, progress });
  t.equal(r.exitCode, 0, 'the second boot ran the command');
  t.equal(readFileSync(path.join(path.dirname(f), 'spawns'), 'utf8').split('\n').filter(Boolean).length, 2, 'QEMU was started twice');
  t.match(lines.join('\n'), /the kernel panicked before the init ran; booting once more/);
});

t.test('a panic twice fails with the console; a panic after the init ran is not booted again', async (t) => {
  const f = fakeQemu(t, 'echo x >> "$(dirname "$0")/spawns"; echo "[    2.589204] Kernel panic - not syncing: Fatal exception in interrupt"; exit 0');
  await t.rejects(runInVm({ command: 'true' }), { code: 'EIO', message: /qemu exited \(status 0\) before the guest booted[^]*Kernel panic - not syncing: Fatal exception/ });
  t.equal(readFileSync(path.join(path.dirname(f), 'spawns'), 'utf8').split('\n').filter(Boolean).length, 2, 'booted twice, not more');

  const g = fakeQemu(
    t,
    'echo x >> "$(dirname "$0")/spawns"; echo "krsifs-vm/$(echo "$@" | sed "s/.*krsifs_nonce=\\([0-9a-f]*\\).*/\\1/"): booted"; echo "[   9.1] Kernel panic - not syncing: oops"; exit 0',
  );
  await t.rejects(runInVm({ command: 'true' }), { code: 'EIO', message: /qemu exited \(status 0\) before the command finished/ });
  t.equal(readFileSync(path.join(path.dirname(g), 'spawns'), 'utf8').split('\n').filter(Boolean).length, 1, 'once: that failure is the guest\'s');
});

t.test('a command that never ends is killed at the overall timeout', async (t) => {
  fakeQemu(t, 'echo "krsifs-vm/$(echo "$@" | sed "s/.*krsifs_nonce=\\([0-9a-f]*\\).*/\\1/"): booted"; exec sleep 60');
  await t.rejects(runInVm({ command: 'sleep 1000', timeoutSec: 3 }), { code: 'ETIMEDOUT', message: /did not finish in 3 s/ });
});
