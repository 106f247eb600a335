// The RFC's indirection, checked across the kernels a fleet runs (and the VM
// runner's basics on each of them: the kernel asked for, BPF LSM active, node,
// bpftool, fuse, the exit status handed back): boot each
// test kernel once (6.1, 6.12: testKernels()) and ask it, with krsifs mounted,
// which hooks it offers (`krsifs hooks --json`) and which files the mount
// has. Every behaviour of the default catalogue must resolve on every kernel
// to one of its candidate hooks (the same one, or the alternative the
// catalogue lists), and have its file. A test catalogue whose behaviours
// name hooks that only one of the kernels has shows the rest: the
// alternative taken where the first candidate is missing, and a behaviour
// with no hook absent from the mount with the reason in `hooks`.
import t from 'tap';
import { sections } from '../helpers/guest-tap.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runInVm } from '../../lib/vm/index.js';
import { root } from '../helpers/daemon.js';
import { testKernels } from '../helpers/guest-suite.js';

interface HooksJson {
  hooks: { hook: string; behaviours: string[] }[];
  behaviours: { behaviour: string; candidates: string[]; hook: string | null; reason: string }[];
}

// Hooks that Debian's 6.1 and 6.12 do not share (bpf_prog_load and
// bpf_map_create came with BPF tokens in 6.9, replacing the *_alloc_security
// ones): a test catalogue, not the product's.
const TEST_CATALOGUE = {
  process_execution: ['bprm_check_security'],
  program_load: ['bpf_prog_load', 'bpf'],
  map_create: ['bpf_map_create'],
  map_alloc: ['bpf_map_alloc_security'],
};

const defaultCatalogue = JSON.parse(readFileSync(path.join(root, 'lib', 'catalogue.json'), 'utf8')) as Record<string, string[]>;

const script = String.raw`
sec() { echo "@@section $1"; }
cat > /tmp/test-catalogue.json <<'EOF'
${JSON.stringify(TEST_CATALOGUE)}
EOF
sec facts
echo "lsm=$(cat /sys/kernel/security/lsm)"
echo "uname=$(uname -r)"
echo "node=$(node -e 'console.log(process.version)')"
echo "bpftool=$(bpftool version | head -1)"
grep -q '[[:space:]]fuse$' /proc/filesystems && echo fuse=loaded
echo "cwd=$(pwd)"
sec hooks; node dist/lib/cli.js hooks --json
sec files; ls -1 /mnt/krsi
sec hooksfile; cat /mnt/krsi/hooks
sec testhooks; node dist/lib/cli.js hooks --json --catalogue /tmp/test-catalogue.json
mkdir -p /mnt/k2 /sys/fs/bpf/k2
setsid node dist/lib/cli.js mount /mnt/k2 --catalogue /tmp/test-catalogue.json --pin-root /sys/fs/bpf/k2 >/tmp/k2.log 2>&1 </dev/null &
i=0; while ! grep -q ' /mnt/k2 fuse' /proc/mounts && [ $i -lt 150 ]; do i=$((i+1)); sleep 0.2; done
sec testfiles; ls -1 /mnt/k2
sec testhooksfile; cat /mnt/k2/hooks
sec end
exit 3
`;

interface Seen {
  version: string;
  hooks: HooksJson;
  test: HooksJson;
}
const seen = new Map<string, Seen>();

for (const kernel of testKernels()) {
  t.test(`the default catalogue resolves on ${kernel}; a behaviour without its hooks is absent, with the reason`, async (t) => {
    const chunks: Buffer[] = [];
    const r = await runInVm({ command: script, kernel, timeoutSec: 300, onOutput: (b) => chunks.push(b) });
    t.comment(`ran on kernel ${r.kernel.version} (--kernel ${kernel}); boot ${r.bootMs} ms; total ${r.totalMs} ms`);
    const s = sections(r.output);
    if (!s.has('end')) t.fail('the guest script did not finish', { output: r.output.slice(-4000) });

    // the runner itself, on this kernel
    const facts = Object.fromEntries(
      (s.get('facts') ?? '').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    t.equal(r.exitCode, 3, 'exit 3 in the guest is exitCode 3');
    t.match(facts.lsm, /(^|,)bpf(,|$)/, `BPF LSM is active: ${facts.lsm}`);
    t.equal(facts.uname, r.kernel.version, 'the guest runs the kernel asked for');
    t.equal(facts.node, process.version, 'node runs, the host binary');
    t.match(facts.bpftool, /^bpftool v\d/, 'bpftool runs');
    t.equal(facts.fuse, 'loaded', 'fuse is there (a module on 6.1, built in on 6.12)');
    t.equal(facts.cwd, '/krsifs', 'the command runs in the project');
    t.equal(Buffer.concat(chunks).toString(), r.output, 'onOutput saw the output as it came');
    t.ok(r.bootMs > 0 && r.bootMs < 120_000 && r.totalMs >= r.bootMs, `booted in ${r.bootMs} ms`);

    const hooks = JSON.parse(s.get('hooks') ?? '{}') as HooksJson;
    const test = JSON.parse(s.get('testhooks') ?? '{}') as HooksJson;
    const offered = new Set(hooks.hooks.map((h) => h.hook));
    t.ok(offered.size > 200, `krsifs hooks --json lists the kernel's ${offered.size} LSM hooks`);
    seen.set(kernel, { version: facts.uname ?? kernel, hooks, test });

    const files = new Set((s.get('files') ?? '').split('\n').filter(Boolean));
    for (const [behaviour, candidates] of Object.entries(defaultCatalogue)) {
      const b = hooks.behaviours.find((x) => x.behaviour === behaviour);
      t.ok(b?.hook && candidates.includes(b.hook), `${behaviour} resolves to one of ${candidates.join(', ')}: ${b?.hook}`);
      t.equal(b?.hook, candidates.find((h) => offered.has(h)), `${behaviour}: the first candidate this kernel has`);
      t.ok(files.has(behaviour), `${behaviour} has its file`);
      t.match(s.get('hooksfile') ?? '', new RegExp(`^${behaviour}\\t${b?.hook}\\tavailable$`, 'm'), `hooks says ${behaviour} -> ${b?.hook}`);
    }

    // the test catalogue: each behaviour as this kernel's hook table says
    const testFiles = new Set((s.get('testfiles') ?? '').split('\n').filter(Boolean));
    const testHooksFile = s.get('testhooksfile') ?? '';
    for (const [behaviour, candidates] of Object.entries(TEST_CATALOGUE)) {
      const want = candidates.find((h) => offered.has(h)) ?? null;
      const b = test.behaviours.find((x) => x.behaviour === behaviour);
      t.equal(b?.hook ?? null, want, `${behaviour}: ${want ?? 'no hook here'}`);
      if (want) {
        t.ok(testFiles.has(behaviour), `${behaviour} has its file (${want}${want !== candidates[0] ? `, the alternative to ${candidates[0]}` : ''})`);
        t.match(testHooksFile, new RegExp(`^${behaviour}\\t${want}\\tavailable$`, 'm'), `hooks says ${behaviour} -> ${want}`);
      } else {
        t.notOk(testFiles.has(behaviour), `${behaviour} has no file`);
        const line = testHooksFile.split('\n').find((l) => l.startsWith(`${behaviour}\t`)) ?? '';
        t.match(line, new RegExp(`^${behaviour}\\t-\\tunavailable: .*${candidates[0]}`), `hooks says why: ${line}`);
      }
    }
  });
}

t.test('across the kernels: the same hook for every default behaviour, or the listed alternative; what differs', async (t) => {
  const ks = [...seen.keys()];
  if (ks.length < 2) {
    t.comment(`one kernel only (${ks.join(', ') || 'none booted'}): nothing to compare`);
    return;
  }
  const [a, b] = [seen.get(ks[0]!)!, seen.get(ks[1]!)!];
  for (const [behaviour, candidates] of Object.entries(defaultCatalogue)) {
    const ha = a.hooks.behaviours.find((x) => x.behaviour === behaviour)?.hook;
    const hb = b.hooks.behaviours.find((x) => x.behaviour === behaviour)?.hook;
    t.ok(ha === hb || (candidates.includes(ha!) && candidates.includes(hb!)), `${behaviour}: ${ha} on ${a.version}, ${hb} on ${b.version}`);
  }
  const setA = new Set(a.hooks.hooks.map((h) => h.hook));
  const setB = new Set(b.hooks.hooks.map((h) => h.hook));
  t.comment(`hooks only on ${a.version}: ${[...setA].filter((h) => !setB.has(h)).join(' ') || 'none'}`);
  t.comment(`hooks only on ${b.version}: ${[...setB].filter((h) => !setA.has(h)).join(' ') || 'none'}`);
  const diff = Object.keys(TEST_CATALOGUE).filter(
    (x) => a.test.behaviours.find((y) => y.behaviour === x)?.hook !== b.test.behaviours.find((y) => y.behaviour === x)?.hook,
  );
  t.comment(`test catalogue behaviours that resolve differently: ${diff.join(', ') || 'none'}`);
  if (ks.includes('6.1') && ks.includes('6.12')) {
    const by = (k: string, x: string) => seen.get(k)!.test.behaviours.find((y) => y.behaviour === x)?.hook ?? null;
    t.equal(by('6.12', 'program_load'), 'bpf_prog_load', 'program_load on 6.12: bpf_prog_load');
    t.equal(by('6.1', 'program_load'), 'bpf', 'program_load on 6.1: bpf, the alternative');
    t.equal(by('6.1', 'map_create'), null, 'map_create: no file on 6.1');
    t.equal(by('6.12', 'map_alloc'), null, 'map_alloc: no file on 6.12');
  }
});
