// npm run bench, host side: boot the BPF LSM VM once (krsifs vm, no mount:
// the guest side starts the daemon itself), run bench/guest.ts there, take
// its JSON from between the markers, add what the host knows (CPU, load),
// print the table and write .cache/bench/<date>.json.
//
//   node dist/bench/run.js [--quick] [--only=memory,attach,read,hot,denials,loop,scale] [--json]
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runInVm } from '../lib/vm/index.js';
import { projectRoot } from '../lib/vm/paths.js';
import { Progress } from '../lib/vm/progress.js';

const BEGIN = '----- krsifs-bench json begin -----';
const END = '----- krsifs-bench json end -----';

interface Stats { n: number; median: number; p95: number; p99: number; min: number; max: number }

export interface Row {
  figure: string;
  /** What the baseline is. */
  baseline: string;
  krsifs: string;
  base: string;
  /** krsifs / baseline: median, p95. */
  ratio: string;
  target: string;
  met: 'yes' | 'NO' | '-';
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '?');
const ms = (s: Stats) => `${fmt(s.median)} / ${fmt(s.p95)} ms`;
function fmt(x: number): string {
  if (!Number.isFinite(x)) return '?';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
}
const ratio = (a: Stats, b: Stats) => ({ median: a.median / b.median, p95: a.p95 / b.p95 });
const rtext = (r: { median: number; p95: number }) => `${f2(r.median)}× / ${f2(r.p95)}×`;
const met = (ok: boolean): 'yes' | 'NO' => (ok ? 'yes' : 'NO');

/** The table's rows from the guest's JSON. Figures absent from the run are left out. */
export function rows(g: any): Row[] {
  const out: Row[] = [];
  if (g.attach) {
    const a = g.attach;
    const r = ratio(a.krsifsWrite, a.loaderSpan);
    out.push({ figure: 'attach: write(2) of `deny_exec.o target=…`', baseline: 'C loader, open→attach span', krsifs: ms(a.krsifsWrite), base: ms(a.loaderSpan), ratio: rtext(r), target: '≤ 1.05×', met: met(r.median <= 1.05) });
    const w = ratio(a.krsifsShell, a.loaderProcess);
    out.push({ figure: 'attach+detach, whole process: `sh -c \'echo … > file && echo !deny_exec > file\'`', baseline: 'C loader, whole process (detaches at exit)', krsifs: ms(a.krsifsShell), base: ms(a.loaderProcess), ratio: rtext(w), target: '(info)', met: '-' });
  }
  if (g.attachBig) {
    const { empty, occupied } = g.attachBig;
    const r = ratio(empty.krsifsWrite, empty.loaderSpan);
    out.push({ figure: 'attach, big program (bench_verifier.o): write(2) to an empty file (krsifs links its denial observer too)', baseline: 'C loader, open→attach span', krsifs: ms(empty.krsifsWrite), base: ms(empty.loaderSpan), ratio: rtext(r), target: '≤ 1.05×', met: met(r.median <= 1.05) });
    const o = ratio(occupied.krsifsWrite, occupied.loaderSpan);
    out.push({ figure: 'attach, big program: write(2) next to deny_exec (the observer is in)', baseline: 'C loader, open→attach span, same hook state', krsifs: ms(occupied.krsifsWrite), base: ms(occupied.loaderSpan), ratio: rtext(o), target: '(info)', met: '-' });
  }
  if (g.read) {
    for (const n of ['0', '1', '30']) {
      const x = g.read[n];
      if (!x) continue;
      const r = ratio(x.cat, x.catLsm);
      out.push({ figure: `read: whole \`cat\`, ${x.listed} program${x.listed === 1 ? '' : 's'}`, baseline: 'cat /sys/kernel/security/lsm', krsifs: ms(x.cat), base: ms(x.catLsm), ratio: rtext(r), target: '≤ 2×', met: met(r.median <= 2) });
      if (x.bpftoolLinkShow) {
        const b = ratio(x.cat, x.bpftoolLinkShow);
        out.push({ figure: `read: whole \`cat\`, ${x.listed} program${x.listed === 1 ? '' : 's'}`, baseline: '`bpftool link show` (what an operator runs otherwise)', krsifs: ms(x.cat), base: ms(x.bpftoolLinkShow), ratio: rtext(b), target: '(info)', met: '-' });
      }
      const p = ratio(x.read, x.readLsm);
      out.push({ figure: `read: open+read+close, ${x.listed} program${x.listed === 1 ? '' : 's'} (p99 ${fmt(x.read.p99)} ms)`, baseline: 'the same on securityfs lsm', krsifs: ms(x.read), base: ms(x.readLsm), ratio: rtext(p), target: 'p99 ≤ 1 ms', met: met(x.read.p99 <= 1) });
      if (x.readHooks) {
        const h = ratio(x.read, x.readHooks);
        out.push({ figure: `read: open+read+close, ${x.listed} program${x.listed === 1 ? '' : 's'}`, baseline: 'the same on krsifs `hooks` (FUSE alone)', krsifs: ms(x.read), base: ms(x.readHooks), ratio: rtext(h), target: '(info)', met: '-' });
      }
    }
  }
  if (g.hotPath) {
    const h = g.hotPath;
    const r = ratio(h.krsifs, h.loader);
    const how = h.observer ? 'with its observer' : 'NO observer attached';
    out.push({ figure: `hot path: fork+exec /bin/true, deny_exec via krsifs (${how})`, baseline: 'same object via the C loader (no observer)', krsifs: ms(h.krsifs), base: ms(h.loader), ratio: rtext(r), target: '≤ 1.03×', met: met(r.median <= 1.03) });
    out.push({ figure: 'hot path: deny_exec via krsifs (cost of the program)', baseline: 'nothing attached', krsifs: ms(h.krsifs), base: ms(h.none), ratio: rtext(ratio(h.krsifs, h.none)), target: '(info)', met: '-' });
  }
  for (const d of g.denials ?? []) {
    out.push({
      figure: `denials: a burst of ${d.n} refused execve (deny_exec's records through \`events\`, one \`cat\`)`,
      baseline: 'refusals the burst counted',
      krsifs: `${d.records} records, lost=${d.lost} (at ${Math.round(d.perSecond)} refusals/s; drained ${fmt(d.drainMs)} ms after)`,
      base: String(d.refused),
      ratio: `${f2(d.records / d.refused)}×`,
      target: 'nothing lost; every refusal a record or in lost=',
      met: met(d.records === d.refused),
    });
  }
  if (g.scale) {
    const o = g.scale.oneHook;
    // the observer is one of the hook's links: the kernel's limit is programs + observer
    const links = o.programs + (o.observer ?? 0);
    out.push({ figure: `scale: links on one hook until refused (${o.refused}): programs${o.observer ? ' + krsifs\'s denial observer' : ''}`, baseline: 'C loader, same objects', krsifs: o.observer ? `${o.programs} + ${o.observer}` : String(o.programs), base: String(o.loaderPrograms), ratio: `${f2(links / o.loaderPrograms)}×`, target: 'same as kernel', met: met(links === o.loaderPrograms) });
    const r = ratio(o.cat, o.lsm.cat);
    out.push({ figure: `scale: whole \`cat\` at ${o.programs} programs (read p99 ${fmt(o.read.p99)} ms)`, baseline: 'cat /sys/kernel/security/lsm', krsifs: ms(o.cat), base: ms(o.lsm.cat), ratio: rtext(r), target: '≤ 2×', met: met(r.median <= 2) });
    const a = g.scale.allFiles;
    const ra = ratio(a.cat, a.catLsm);
    out.push({ figure: `scale: all ${a.files} files full, ${a.programs} programs: whole \`cat\` of each`, baseline: 'cat /sys/kernel/security/lsm', krsifs: ms(a.cat), base: ms(a.catLsm), ratio: rtext(ra), target: '≤ 2×', met: met(ra.median <= 2) });
  }
  if (g.memory) {
    const m = g.memory;
    out.push({ figure: 'memory: daemon RSS, idle', baseline: "bare `node -e 'setInterval(…)'`", krsifs: `${m.daemonIdleMiB} MiB`, base: `${m.bareNodeMiB} MiB`, ratio: `${f2(m.daemonIdleMiB / m.bareNodeMiB)}×`, target: '≤ 1.5×', met: met(m.daemonIdleMiB / m.bareNodeMiB <= 1.5) });
    out.push({ figure: 'memory: daemon RSS, 30 programs', baseline: "bare `node -e 'setInterval(…)'`", krsifs: `${m.daemon30MiB} MiB`, base: `${m.bareNodeMiB} MiB`, ratio: `${f2(m.daemon30MiB / m.bareNodeMiB)}×`, target: '(info)', met: '-' });
    if (g.scale?.allFiles?.daemonRssMiB) {
      const a = g.scale.allFiles;
      out.push({ figure: `memory: daemon RSS, ${a.programs} programs`, baseline: "bare `node -e 'setInterval(…)'`", krsifs: `${a.daemonRssMiB} MiB`, base: `${m.bareNodeMiB} MiB`, ratio: `${f2(a.daemonRssMiB / m.bareNodeMiB)}×`, target: '≤ 2×', met: met(a.daemonRssMiB / m.bareNodeMiB <= 2) });
    }
  }
  if (g.eventLoop) {
    const e = g.eventLoop;
    // the monitor's values include its 1 ms sampling period: the stall is max - 1 ms
    const stall = e.maxDelayDuringVerify.median - 1;
    const ref = e.refMaxDelayDuringVerify ? e.refMaxDelayDuringVerify.median - 1 : NaN;
    out.push({ figure: `event loop: daemon's longest stall while the verifier works (${fmt(e.verifyUs.median)} ms, ${e.processedInsns} insns); median of ${e.maxDelayDuringVerify.n} loads, worst ${fmt(e.maxDelayDuringVerify.max - 1)} ms`, baseline: 'bare node process, same windows', krsifs: `${fmt(stall)} ms`, base: `${fmt(ref)} ms`, ratio: `${f2((stall + 1) / (ref + 1))}×`, target: '≤ 10 ms', met: met(stall <= 10) });
    out.push({ figure: "event loop: daemon's longest stall, idle", baseline: 'bare node process, same window', krsifs: `${fmt(e.maxDelayIdle - 1)} ms`, base: `${fmt((e.refMaxDelayIdle ?? NaN) - 1)} ms`, ratio: `${f2(e.maxDelayIdle / e.refMaxDelayIdle)}×`, target: '(info)', met: '-' });
    out.push({ figure: 'event loop: verifier time of the big fixture', baseline: 'C loader: load span', krsifs: `${fmt(e.verifyUs.median)} ms (kernel's own)`, base: `${fmt(e.verifierLoad.median)} ms`, ratio: '-', target: '≥ 100 ms', met: met(e.verifyUs.median >= 100) });
  }
  return out;
}

export function table(rs: Row[]): string {
  const head: Row = { figure: 'figure', baseline: 'baseline', krsifs: 'krsifs (median / p95)', base: 'baseline (median / p95)', ratio: 'ratio (median / p95)', target: 'target', met: 'met' as never };
  const cols = ['figure', 'krsifs', 'baseline', 'base', 'ratio', 'target', 'met'] as const;
  const lines = [head, ...rs].map((r) => `| ${cols.map((c) => String(r[c]).replace(/\|/g, '\\|')).join(' | ')} |`);
  lines.splice(1, 0, `|${cols.map(() => '---').join('|')}|`);
  return lines.join('\n');
}

function hostInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '?',
    cpus: os.cpus().length,
    kernel: os.release(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

async function main(argv: string[]): Promise<number> {
  const guestArgs = argv.filter((a) => a === '--quick' || a.startsWith('--only='));
  const started = new Date();
  const hostBefore = hostInfo();
  process.stderr.write(`bench: host ${hostBefore.cpu} × ${hostBefore.cpus}, load ${hostBefore.loadavg.join(' ')}\n`);
  let pending = '';
  const run = await runInVm({
    command: ['node', '/krsifs/dist/bench/guest.js', ...guestArgs].join(' '),
    mount: false,
    timeoutSec: 1500,
    progress: new Progress(process.stderr),
    // the guest's lines as they come (but not its JSON)
    onOutput: (b) => {
      pending += b.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) if (!l.startsWith('{"') && l !== BEGIN && l !== END && l.trim()) process.stderr.write(`${l}\n`);
    },
  });
  const hostAfter = hostInfo();
  const i = run.output.indexOf(BEGIN);
  const j = run.output.indexOf(END);
  if (i < 0 || j < i) {
    process.stderr.write(`bench: the guest printed no result (exit ${run.exitCode}); its last lines:\n${run.output.split('\n').slice(-40).join('\n')}\n`);
    return 1;
  }
  const guest = JSON.parse(run.output.slice(i + BEGIN.length, j).trim());
  const rs = rows(guest);
  const doc = {
    date: started.toISOString(),
    host: { ...hostBefore, loadavgBefore: hostBefore.loadavg, loadavgAfter: hostAfter.loadavg, loadavg: undefined },
    vm: { accel: 'tcg', kernel: run.kernel.version, bootMs: run.bootMs, totalMs: run.totalMs },
    guest,
    table: rs,
  };
  const dir = path.join(projectRoot(), '.cache', 'bench');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
  if (argv.includes('--json')) {
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(
      `krsifs benchmarks, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC${guest.guest?.quick ? ' (--quick: few repetitions)' : ''}\n` +
        `host ${hostBefore.cpu} × ${hostBefore.cpus}, Linux ${hostBefore.kernel}, load average ${hostBefore.loadavg.join(' ')} before, ${hostAfter.loadavg.join(' ')} after\n` +
        `guest Linux ${run.kernel.version} under QEMU TCG (-smp 2), node ${guest.guest?.node}; boot ${(run.bootMs / 1000).toFixed(1)} s, whole run ${(run.totalMs / 1000).toFixed(0)} s\n\n` +
        table(rs) +
        '\n\n' +
        `JSON: ${path.relative(process.cwd(), file)}\n`,
    );
  }
  if (guest.error) process.stderr.write(`bench: the guest failed part way:\n${guest.error}\n`);
  return guest.error || run.exitCode !== 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  },
);
