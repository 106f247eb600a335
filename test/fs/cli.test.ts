// krsifs hooks and krsifs doctor, checked against the kernel itself.
import t from 'tap';
import { bash } from '../helpers/shell.js';
import { cli } from '../helpers/daemon.js';

t.test('krsifs hooks lists exactly the LSM hooks of this kernel\'s BTF', async (t) => {
  // The oracle, independent of the addon: bpf_lsm_<name> functions whose name
  // is also a member of the kernel's table of LSM hooks (security_hook_heads,
  // or lsm_static_calls_table since 6.9). bpf_lsm_* alone also matches the BPF
  // LSM's own helpers (bpf_lsm_func_proto, bpf_lsm_init, ...).
  const btf = await bash(`bpftool btf dump file /sys/kernel/btf/vmlinux | sed -n "s/^\\[[0-9]*\\] FUNC 'bpf_lsm_\\([a-z0-9_]*\\)'.*/\\1/p" | sort -u`);
  const table = await bash(
    `bpftool btf dump file /sys/kernel/btf/vmlinux format c | awk '/^struct (security_hook_heads|lsm_static_calls_table) \\{/,/^\\};/' | sed -n 's/^\\tstruct [a-z_]* \\([a-z0-9_]*\\).*;/\\1/p' | sort -u`,
  );
  const members = new Set(table.stdout.trim().split('\n'));
  t.ok(members.size > 200, `the kernel's hook table has ${members.size} members`);
  const expected = btf.stdout.trim().split('\n').filter((h) => members.has(h));
  t.ok(expected.length > 200, `the kernel offers ${expected.length} hooks`);
  const r = await bash(`node ${cli} hooks`);
  t.equal(r.exitCode, 0);
  const rows = r.stdout.trim().split('\n').filter((l) => !l.startsWith('#'));
  t.same(rows.map((l) => l.split('\t')[0]).sort(), expected, 'same hooks as bpftool sees');
  t.ok(rows.includes('bprm_check_security\tprocess_execution'), 'process_execution maps to bprm_check_security');
  t.ok(rows.includes('file_open\tfile_open'));
  const json = JSON.parse((await bash(`node ${cli} hooks --json`)).stdout);
  t.equal(json.hooks.length, expected.length);
  t.same(json.behaviours.find((b: { behaviour: string }) => b.behaviour === 'module_load').hook, 'kernel_read_file');
});

t.test('krsifs doctor: every check, and on a refusing kernel the live probe fails with its fix', async (t) => {
  const r = await bash(`node ${cli} doctor --json`);
  const report = JSON.parse(r.stdout);
  const names = report.checks.map((c: { name: string }) => c.name);
  t.same(names.filter((n: string) => n !== 'lockdown'), ['kernel', 'BTF', 'CONFIG_BPF_LSM', 'bpf LSM active', 'bpffs', '/dev/fuse', 'capabilities', 'live probe']);
  const probe = report.checks.find((c: { name: string }) => c.name === 'live probe');
  t.equal(r.exitCode, report.ok ? 0 : 1, 'exit status says whether all passed');
  if (!probe.ok) {
    t.match(probe.detail, /EPERM|refuse/i, 'says the kernel refused');
    t.match(probe.fix, /npm run vm|krsifs vm/, 'says how to try on a real BPF LSM kernel');
  }
  const human = await bash(`node ${cli} doctor`);
  t.match(human.stdout, /^(ok  |FAIL)  kernel /m);
  for (const c of report.checks.filter((c: { ok: boolean; fix?: string }) => !c.ok && c.fix)) {
    t.match(human.stdout, `fix: ${c.fix}`, `${c.name}: the fix is printed`);
  }
});

t.test('unknown commands and no command print usage', async (t) => {
  const r = await bash(`node ${cli} frobnicate`);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, /unknown command "frobnicate"/);
  t.match(r.stderr, /usage: krsifs/);
});
