// A kernel with BPF LSM built in but not active: Debian's 6.1 booted with
// `lsm=` lacking bpf. Such a kernel loads and attaches an LSM program without
// complaint and never calls it, so the write would "work" and enforce
// nothing. Here krsifs must still mount, `krsifs doctor` must fail the check
// and print the GRUB line built from this kernel's own LSM list plus bpf, and
// every attach must fail (EOPNOTSUPP) with error_log saying why and what to
// do, leaving no link in the kernel.
import t from 'tap';
import { sections } from '../helpers/guest-tap.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runInVm } from '../../lib/vm/index.js';
import { root } from '../helpers/daemon.js';
import { testKernels } from '../helpers/guest-suite.js';

const LSM = 'lockdown,capability';
const kernel = testKernels().includes('6.1') ? '6.1' : testKernels()[0]!;
const behaviours = Object.keys(JSON.parse(readFileSync(path.join(root, 'lib', 'catalogue.json'), 'utf8')) as Record<string, string[]>);

const script = String.raw`
sec() { echo "@@section $1"; }
cd /krsifs/bpf/obj
sec lsm; cat /sys/kernel/security/lsm; echo
sec doctor; node /krsifs/dist/lib/cli.js doctor; echo "status=$?"
sec doctorjson; node /krsifs/dist/lib/cli.js doctor --json
sec attach
for f in ${behaviours.join(' ')}; do
	echo fixtures/gen_pair.o > /mnt/krsi/$f 2>/tmp/err; echo "$f status=$? $(cat /tmp/err)"
done
printf '#!/bin/sh\necho ran\n' > /tmp/victim; chmod +x /tmp/victim
echo deny_exec.o target=/tmp/victim > /mnt/krsi/process_execution 2>/dev/null; echo "deny_exec status=$?"
sec victim; /tmp/victim
sec listing; cat /mnt/krsi/process_execution
sec links; bpftool link show -j
sec errorlog; cat /mnt/krsi/error_log
sec end
`;

t.test(`${kernel} with lsm=${LSM}: mounts, doctor fails with the GRUB fix, every attach is refused and explained`, async (t) => {
  const r = await runInVm({ command: script, kernel, lsm: LSM, timeoutSec: 300 });
  t.comment(`ran on kernel ${r.kernel.version} (--kernel ${kernel} --lsm ${LSM}); boot ${r.bootMs} ms; total ${r.totalMs} ms`);
  const s = sections(r.output);
  if (!s.has('end')) t.fail('the guest script did not finish', { output: r.output.slice(-4000) });
  t.ok(r.messages.some((m) => m.startsWith('mounted krsifs at /mnt/krsi')), 'krsifs mounts');
  const active = (s.get('lsm') ?? '').trim();
  t.notMatch(active, /(^|,)bpf(,|$)/, `bpf is not an active LSM: ${active}`);

  const doctor = s.get('doctor') ?? '';
  t.match(doctor, /^FAIL +bpf LSM active +\/sys\/kernel\/security\/lsm: /m, 'doctor fails the check');
  const want = `lsm=${active},bpf`;
  t.ok(doctor.includes(`GRUB_CMDLINE_LINUX_DEFAULT="... ${want}"`), `and prints the GRUB line with this kernel's list plus bpf: ${want}`);
  t.match(doctor, /update-grub/, 'and how to apply it');
  t.match(doctor, /status=1$/m, 'doctor exits 1');
  const json = JSON.parse(s.get('doctorjson') ?? '{}') as { ok: boolean; checks: { name: string; ok: boolean; fix?: string }[] };
  t.equal(json.ok, false, 'doctor --json: not ok');
  t.match(json.checks.find((c) => c.name === 'bpf LSM active'), { ok: false, fix: new RegExp(want) }, 'doctor --json: the check failed, with the fix');

  const attach = s.get('attach') ?? '';
  for (const b of behaviours) {
    t.match(attach, new RegExp(`^${b} status=1 .*Operation not supported`, 'm'), `echo gen_pair.o > ${b}: EOPNOTSUPP`);
  }
  t.match(attach, /^deny_exec status=1$/m, 'deny_exec.o is refused too');
  t.equal((s.get('victim') ?? '').trim(), 'ran', 'nothing enforces: the victim runs');
  t.equal((s.get('listing') ?? '').trim(), '', 'process_execution lists nothing');
  t.same(JSON.parse((s.get('links') ?? '').trim() || '[]'), [], 'bpftool: no link in the kernel');
  const log = s.get('errorlog') ?? '';
  const entries = log.split('\n').filter((l) => /EOPNOTSUPP/.test(l));
  t.equal(entries.length, behaviours.length + 1, 'error_log has an entry per refused attach');
  t.match(entries[0], new RegExp(`the bpf LSM is not active on this kernel \\(active: ${active}\\).*never run it.*${want}`), `error_log says why and what to do: ${entries[0]}`);
});
