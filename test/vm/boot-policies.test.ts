// Policies the machine keeps, on a real BPF LSM kernel. Two boots of the VM
// with the same boot script: it puts a policy directory at the default place,
// /etc/krsifs/policies.d, before the init starts krsifs (with no argument but
// the mountpoint), and the first command of each boot is an exec the policy
// refuses. The first boot then runs the guest steps
// (fixtures/boot-policies.guest.ts); the second, with an empty bpffs as after
// a reboot, checks that the directory alone brings the same enforcement back.
import t from 'tap';
import { runInVm } from '../../lib/vm/index.js';
import { durationMs, parseGuestTap } from '../helpers/guest-tap.js';
import { testKernels } from '../helpers/guest-suite.js';

const OBJ = '/krsifs/bpf/obj';
/** What a machine's boot would have in place: the policy directory, the files it protects. */
const BOOT = `
mkdir -p /etc/krsifs/policies.d /opt
for f in tool tool2 tool3; do printf '#!/bin/sh\\necho ran\\n' >/opt/$f; chmod 755 /opt/$f; done
echo secret >/opt/secret; echo other >/opt/other
cp ${OBJ}/deny_path.o /etc/krsifs/deny_path.o
cat >/etc/krsifs/policies.d/10-exec.conf <<'EOF'
# the tool nobody may run
process_execution ${OBJ}/deny_exec.o target=/opt/tool
EOF
# a relative path: against the .conf's directory
echo 'file_open ../deny_path.o target=/opt/secret' >/etc/krsifs/policies.d/20-open.conf
`;

/** The first thing run once the init has started krsifs. */
const FIRST = '/opt/tool; echo "first-command-status=$?"; cat /opt/secret; echo "second-command-status=$?"';

for (const kernel of testKernels()) {
  t.test(`boot 1 (${kernel}): the first command is refused; status, restart and upgrade with no gap, SIGHUP, a broken file, strict, prune`, async (t) => {
    const run = await runInVm({
      kernel,
      boot: BOOT,
      command: `${FIRST}; cd ${OBJ} && node --test --test-reporter=tap /krsifs/dist/test/vm/fixtures/boot-policies.guest.js; ` +
        's=$?; echo "# init\'s daemon log:"; sed "s/^/#   /" /tmp/krsifs.log | tail -30; exit $s',
      timeoutSec: 600,
    });
    t.comment(`kernel ${run.kernel.version}; prepare ${run.prepareMs} ms; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
    for (const m of run.messages) t.comment(`guest: ${m}`);
    t.match(run.output, /Operation not permitted\s*\nfirst-command-status=126\n/, 'the first command: exec of /opt/tool refused');
    t.match(run.output, /cat: can't open '\/opt\/secret': Operation not permitted\s*\nsecond-command-status=1\n/, 'the second: open of /opt/secret refused');
    for (const m of run.output.matchAll(/# (exec loop: [^\n]*)/g)) t.comment(m[1]!);
    const results = parseGuestTap(run.output);
    for (const r of results) {
      t.comment(`step ${r.name.split('.')[0]}: ${durationMs(r) ?? '?'} ms`);
      if (r.ok) t.pass(r.name);
      else t.fail(r.notPassed ? `${r.name} (${r.notPassed})` : r.name, { diagnostic: true, guest: r.diag });
    }
    t.equal(results.length, 7, 'all 7 guest steps ran');
    t.equal(run.exitCode, 0, 'the guest suite exited 0');
    if (run.exitCode !== 0 || results.length !== 7) t.comment(run.output.split('\n').slice(-150).join('\n'));
  });

  t.test(`boot 2 (${kernel}; a reboot: empty bpffs, the same directory): refused from the first command, status 0`, async (t) => {
    const run = await runInVm({
      kernel,
      boot: BOOT,
      command: `${FIRST}; ls /sys/fs/bpf/krsi/process_execution /sys/fs/bpf/krsi/file_open; node /krsifs/dist/lib/cli.js status; echo "status=$?"`,
      timeoutSec: 300,
    });
    t.comment(`kernel ${run.kernel.version}; boot ${run.bootMs} ms; total ${run.totalMs} ms`);
    t.match(run.output, /Operation not permitted\s*\nfirst-command-status=126\n/, 'the first command: exec of /opt/tool refused');
    t.match(run.output, /second-command-status=1\n/, 'the open of /opt/secret refused');
    t.match(run.output, /process_execution:\ndeny_exec\n/, 'pinned again under the pin root');
    t.match(run.output, /file_open:\ndeny_path\n/);
    t.match(run.output, /status: the declared policy is in force\nstatus=0\n/);
    t.equal(run.exitCode, 0);
    if (run.exitCode !== 0) t.comment(run.output);
  });
}
