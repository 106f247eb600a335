// The shipped unit under a real systemd: a Debian 12 root (mmdebstrap, cached)
// with krsifs put in place and enabled by `krsifs install --root`, a policy
// directory, booted with systemd as init on Debian's BPF LSM kernel. Proves:
// the unit is active and enforcing before sysinit.target and before the login
// prompt; READY=1 and STATUS= reach systemd; the journal's lines; `systemctl
// restart` with an exec loop running never lets it through and keeps the
// link; `systemctl reload` reconciles. A check unit (After=getty.target)
// reports through /dev/kmsg (test/helpers/systemd-vm.ts).
import t from 'tap';
import { bootSystemd, systemdImage } from '../helpers/systemd-vm.js';

const CHECK = `#!/bin/sh
n=$(sed -n 's/.*krsifs_nonce=\\([0-9a-f]*\\).*/\\1/p' /proc/cmdline)
k() { while IFS= read -r l; do printf '%s\\n' "$l" >/dev/kmsg; done; }
say() { echo "krsifs-vm/$n: $*" | k; }
say booted
say running
{
  echo "is-active=$(systemctl is-active krsifs.service)"
  /opt/tool; echo "first-exec-status=$?"
  krsifs status; echo "status-exit=$?"
  for u in krsifs.service sysinit.target basic.target serial-getty@ttyS0.service; do
    echo "active-since $u $(systemctl show -P ActiveEnterTimestampMonotonic $u)"
  done
  echo "status-text=$(systemctl show -P StatusText krsifs.service)"
  echo "journal-info-mounted=$(journalctl -u krsifs.service -p info -o cat --no-pager | grep -c 'msg=mounted')"
  echo "journal-notice-mounted=$(journalctl -u krsifs.service -p notice -o cat --no-pager | grep -c 'msg=mounted')"
  echo "journal-lines=$(journalctl -u krsifs.service -o cat --no-pager | grep -c 'level=')"
  echo "journal-with-time=$(journalctl -u krsifs.service -o cat --no-pager | grep -c 'time=')"
  journalctl -u krsifs.service -o short-monotonic --no-pager | grep -E 'policies applied|msg=mounted|policy' | sed 's/^/journal: /'
  rm -f /tmp/tries /tmp/through
  before=$(cut -f1,4 /mnt/krsi/process_execution | tr '\\t' ' ')
  (while :; do echo >>/tmp/tries; /opt/tool >/dev/null 2>&1 && echo >>/tmp/through; done) &
  loop=$!
  systemctl restart krsifs.service; echo "restart-exit=$?"
  kill $loop
  echo "links-before=$before"
  echo "links-after=$(cut -f1,4 /mnt/krsi/process_execution | tr '\\t' ' ')"
  echo "tries=$(wc -l </tmp/tries) through=$(cat /tmp/through 2>/dev/null | wc -l)"
  echo "kept-after-restart=$(journalctl -u krsifs.service -o cat --no-pager | grep -c 'msg="policy kept"')"
  printf 'process_execution ../../../usr/local/lib/krsifs/deny_exec.o target=/opt/tool2\\n' >/etc/krsifs/policies.d/10-exec.conf
  systemctl reload krsifs.service; echo "reload-exit=$?"
  systemctl status krsifs.service --no-pager -n 12 | sed 's/^/unit: /'
  sleep 1
  for i in 1 2 3 4 5 6 7 8 9 10; do krsifs status >/dev/null && break; sleep 2; done
  /opt/tool2; echo "after-reload-tool2=$?"
  /opt/tool >/dev/null; echo "after-reload-tool=$?"
  echo "is-active-after=$(systemctl is-active krsifs.service)"
} 2>&1 | k
say "exit 0"
systemctl poweroff
`;

const CHECK_UNIT = `[Unit]
Description=krsifs test: report, then power off
After=multi-user.target getty.target krsifs.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/krsifs-vm-check
[Install]
WantedBy=multi-user.target
`;

t.test('Debian with systemd: krsifs.service is active and enforcing before the login prompt; restart and reload', async (t) => {
  const img = await systemdImage(
    {
      '/usr/local/sbin/krsifs-vm-check': CHECK,
      '/etc/systemd/system/krsifs-vm-check.service': CHECK_UNIT,
      '/opt/tool': '#!/bin/sh\necho ran\n',
      '/opt/tool2': '#!/bin/sh\necho ran\n',
      // a relative path: the objects krsifs install put in /usr/local/lib/krsifs
      '/etc/krsifs/policies.d/10-exec.conf': 'process_execution ../../../usr/local/lib/krsifs/deny_exec.o target=/opt/tool\n',
    },
    ['krsifs-vm-check.service'],
  );
  t.comment(`kernel ${img.kernel.version}; image built in ${img.buildMs} ms`);
  const boot = await bootSystemd(img);
  t.comment(`boot to the check unit: ${boot.bootMs} ms`);
  const out = boot.output;
  const c = boot.console;
  const fail = () => t.comment(`--- console tail ---\n${c.split('\n').slice(-150).join('\n')}`);
  t.equal(boot.exitCode, 0, 'the check ran to its end');

  const started = c.indexOf('Started krsifs.service');
  t.ok(started > 0, 'systemd started krsifs.service (READY=1 received)');
  t.ok(started < c.indexOf('Reached target sysinit.target'), 'before sysinit.target');
  t.ok(started < c.indexOf('login:'), 'before the login prompt');
  t.match(out, /is-active=active\n/);
  // each fact on its own: systemd and the kernel write to the same console, between the
  // check's lines and at their start ("[   15.355927] is-active=active")
  t.match(out, /\/opt\/tool: Operation not permitted\n/, 'enforcing: the exec is refused (EPERM)');
  t.match(out, /first-exec-status=126\n/, 'enforcing: the shell could not run it');
  t.match(out, /status: the declared policy is in force\n/);
  t.match(out, /status-exit=0\n/);
  const since = (u: string) => Number(new RegExp(`active-since ${u.replace(/[.@]/g, '\\$&')} (\\d+)`).exec(out)?.[1] ?? NaN);
  t.ok(since('krsifs.service') > 0 && since('krsifs.service') < since('sysinit.target'), 'active before sysinit.target (monotonic timestamps)');
  t.ok(since('sysinit.target') <= since('basic.target') && since('basic.target') < since('serial-getty@ttyS0.service'), 'the serial getty came after');
  t.match(out, /status-text=serving; policies: 1 in force\n/, 'STATUS= reached systemd');
  t.match(out, /journal-info-mounted=1\n/, 'info lines at priority 6');
  t.match(out, /journal-notice-mounted=0\n/, 'and not at notice');
  t.match(out, /journal-with-time=0\n/, 'no second timestamp in the journal');
  t.notMatch(out, /journal-lines=0\n/);

  t.match(out, /restart-exit=0\n/);
  const before = /links-before=(.*)\n/.exec(out)?.[1];
  t.match(before, /^deny_exec link_id=\d+$/);
  t.equal(/links-after=(.*)\n/.exec(out)?.[1], before, 'systemctl restart: the same link');
  const loop = /tries=\s*(\d+) through=\s*(\d+)/.exec(out);
  t.ok(Number(loop?.[1]) > 0, `the exec loop ran (${loop?.[1]} tries)`);
  t.equal(Number(loop?.[2]), 0, 'not one exec got through during the restart');
  t.match(out, /kept-after-restart=1\n/);
  t.match(out, /reload-exit=0\n/);
  t.match(out, /\/opt\/tool2: Operation not permitted\n/, 'systemctl reload: the changed .conf is in force (EPERM)');
  t.match(out, /after-reload-tool2=126\n/, 'systemctl reload: the shell could not run it');
  t.match(out, /after-reload-tool=0\n/);
  t.match(out, /is-active-after=active\n/);
  if (boot.exitCode !== 0 || !/status-exit=0/.test(out)) fail();
});
