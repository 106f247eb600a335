// Runs INSIDE the BPF LSM guest (krsifs vm, started with mount: false): npm
// run bench's guest side. It starts the krsifs daemon itself (to know its pid
// and to turn on KRSIFS_LOOP_MONITOR), runs every benchmark against a
// baseline measured here in the same run, and prints one JSON document
// between BEGIN and END markers for bench/run.ts. Node built-ins only: the
// guest has production dependencies alone. Progress lines go to stderr.
//
// Timing loops that must not include a JS runtime's own cost (fork+exec of a
// process, open+read+close of a file) run in the C helper build/bench/loader.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';

export const BEGIN = '----- krsifs-bench json begin -----';
export const END = '----- krsifs-bench json end -----';

const ROOT = '/krsifs';
const MNT = process.env.KRSI_MNT ?? '/mnt/krsi';
const OBJ = `${ROOT}/bpf/obj`;
const LOADER = `${ROOT}/build/bench/loader`;
const LOG = '/tmp/krsifs-bench.log';
const HOOK = 'bprm_check_security';
const FILE = 'process_execution';
const LSM = '/sys/kernel/security/lsm';
const BPFTOOL = spawnSync('sh', ['-c', 'command -v bpftool'], { encoding: 'utf8' }).stdout.trim() || '/usr/sbin/bpftool';
const OBSERVER_PIN = `/sys/fs/bpf/krsi/link-observers/${FILE}`;
const DENY = `${OBJ}/deny_exec.o`;
// deny_exec's target: a path nothing executes, so every exec runs the
// program's whole comparison and is allowed
const TARGET = 'target=/tmp/krsifs-bench-never-run';
const NOOPS30 = `${OBJ}/fixtures/bench_noops.o`;
const VERIFIER = `${OBJ}/fixtures/bench_verifier.o`;
const single = (n: number) => `${OBJ}/bench/bench_${String(n).padStart(2, '0')}.o`;
const SINGLES = 48;

/** Repetitions; --quick divides them, for developing the harness. */
const quick = process.argv.includes('--quick');
/** Refused execs per burst: under and over one events reader's queue of 4096 lines. */
const BURSTS = quick ? [500] : [1000, 4000];
const REPS = quick
  ? { attach: 4, big: 2, catRounds: 2, cat: 25, reads: 300, execRounds: 2, execs: 100, verify: 2, scaleCat: 20, scaleReads: 100 }
  : { attach: 30, big: 16, catRounds: 6, cat: 50, reads: 2000, execRounds: 20, execs: 100, verify: 10, scaleCat: 60, scaleReads: 500 };
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const want = (name: string) => !ONLY || ONLY.includes(name);

// ---------- statistics ----------

export interface Stats { n: number; median: number; p95: number; p99: number; min: number; max: number }

/** Nearest-rank percentiles of values in ms. */
export function stats(values: number[]): Stats {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: v.length, median: r(at(50)), p95: r(at(95)), p99: r(at(99)), min: r(v[0] ?? NaN), max: r(v.at(-1) ?? NaN) };
}

const nsToMs = (ns: number[]) => ns.map((x) => x / 1e6);
const hr = () => Number(process.hrtime.bigint()) / 1e6;
const say = (s: string) => process.stderr.write(`bench: ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- the C helper ----------

function loader(args: string[], timeoutMs = 300_000): string[] {
  const r = spawnSync(LOADER, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`loader ${args.slice(0, 3).join(' ')}: status ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  return r.stdout.split('\n').filter(Boolean);
}
/** fork+exec argv n times from C: each iteration in ms. */
function runLoop(n: number, argv: string[]): number[] {
  return nsToMs((JSON.parse(loader(['run', String(n), ...argv]).at(-1)!) as { ns: number[] }).ns);
}
/** open+read+close n times from C: each iteration in ms. */
function readLoop(n: number, file: string): number[] {
  return nsToMs((JSON.parse(loader(['read', String(n), file]).at(-1)!) as { ns: number[] }).ns);
}
/** How many iterations of about msEach fit in budgetMs (at least min, at most max): keeps a slow listing from eating the run. */
function fit(max: number, msEach: number, budgetMs: number, min = 50): number {
  return Math.max(min, Math.min(max, Math.floor(budgetMs / Math.max(msEach, 0.001))));
}
/** A probe of 10 reads, then as many as fit in the budget (REPS.reads at most). */
function readsFor(file: string, max: number, budgetMs = 20_000): number {
  return fit(max, stats(readLoop(10, file)).median, budgetMs);
}

// ---------- the daemon ----------

let daemon: ChildProcess | undefined;

/** The loop monitor samples every millisecond: on only for the event loop figure, so it perturbs nothing else. */
async function startDaemon(loopMonitor: boolean): Promise<number> {
  writeFileSync(LOG, '');
  const fd = openSync(LOG, 'a');
  // as every launcher runs it (lib/daemon-node.ts; built-ins only here, so the flag is written out)
  daemon = spawn('node', ['--max-semi-space-size=1', `${ROOT}/dist/lib/cli.js`, 'mount', MNT], {
    cwd: ROOT,
    env: { ...process.env, KRSIFS_LOOP_MONITOR: loopMonitor ? '1' : '' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  for (let i = 0; i < 300; i++) {
    if (readFileSync('/proc/mounts', 'utf8').includes(` ${MNT} fuse`)) return daemon.pid!;
    if (daemon.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`the daemon did not mount ${MNT}: ${readFileSync(LOG, 'utf8')}`);
}

async function stopDaemon(): Promise<void> {
  if (!daemon || daemon.exitCode !== null) return;
  const exited = new Promise((r) => daemon!.once('exit', r));
  daemon.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  for (let i = 0; i < 100 && readFileSync('/proc/mounts', 'utf8').includes(` ${MNT} fuse`); i++) await sleep(100);
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Median of a few RSS samples a quarter second apart, in MiB. */
async function rssMiB(pid: number, samples = 5): Promise<number> {
  const v: number[] = [];
  for (let i = 0; i < samples; i++) {
    v.push(rssKiB(pid) / 1024);
    await sleep(250);
  }
  return Math.round(stats(v).median * 10) / 10;
}

// A second node process with the same 1 ms monitor and the same log line:
// the VM's own hiccups (a vCPU descheduled on a loaded host, TCG) stall it
// too, so it is the baseline that tells the daemon's stalls from the machine's.
const REF_LOG = '/tmp/loop-reference.log';
const REF_SCRIPT = `const h = require('perf_hooks').monitorEventLoopDelay({ resolution: 1 }); h.enable();
setInterval(() => { process.stdout.write('time=' + new Date().toISOString() + ' msg="event loop delay" max_ms=' + (h.max / 1e6).toFixed(2) + ' p99_ms=' + (h.percentile(99) / 1e6).toFixed(2) + '\\n'); h.reset(); }, 1000);`;

function startReference(): ChildProcess {
  writeFileSync(REF_LOG, '');
  const fd = openSync(REF_LOG, 'a');
  const child = spawn('node', ['-e', REF_SCRIPT], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

interface LoopLine { t: number; max: number; p99: number }
function loopLines(file = LOG): LoopLine[] {
  const out: LoopLine[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.includes('msg="event loop delay"')) continue;
    const t = Date.parse(/time=(\S+)/.exec(l)?.[1] ?? '');
    const max = Number(/max_ms=([\d.]+)/.exec(l)?.[1]);
    const p99 = Number(/p99_ms=([\d.]+)/.exec(l)?.[1]);
    if (Number.isFinite(t) && Number.isFinite(max)) out.push({ t, max, p99 });
  }
  return out;
}
/** The worst loop delay of the 1 s reports whose interval overlaps [from, to]. */
function worstDelay(from: number, to: number, file = LOG): number {
  const hits = loopLines(file).filter((l) => l.t > from && l.t - 1000 < to);
  return hits.length ? Math.max(...hits.map((l) => l.max)) : NaN;
}

// ---------- writing to krsifs ----------

class BehaviourFile {
  private readonly fd: number;
  constructor(readonly name: string) {
    this.fd = openSync(`${MNT}/${name}`, 'w');
  }
  /** One write(2) of one line; returns its ms. Throws the write's error (err.code). */
  write(line: string): number {
    const t0 = hr();
    writeSync(this.fd, line + '\n');
    return hr() - t0;
  }
  close() {
    closeSync(this.fd);
  }
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

// ---------- benchmarks ----------

const result: Record<string, unknown> = {};

function env() {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  result.guest = {
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    cpu,
    cpus: readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length,
    node: process.version,
    lsm: readFileSync(LSM, 'utf8').trim(),
    quick,
    repetitions: REPS,
  };
}

/** attach: one write(2) of `OBJ target=...` vs the C loader's open->attach span, and both as whole processes. */
function benchAttach() {
  say(`attach: ${REPS.attach} repetitions of each, interleaved`);
  const f = new BehaviourFile(FILE);
  const write: number[] = [];
  const shell: number[] = [];
  const span: number[] = [];
  const spanLoad: number[] = [];
  const proc: number[] = [];
  const line = `${DENY} ${TARGET}`;
  const kinds = ['write', 'shell', 'loader'] as const;
  // one warm-up of each (page cache, the daemon's JIT), not counted
  for (let i = -1; i < REPS.attach; i++) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(k + Math.max(i, 0)) % kinds.length];
      if (kind === 'write') {
        const ms = f.write(line);
        f.write('!deny_exec');
        if (i >= 0) write.push(ms);
      } else if (kind === 'shell') {
        // attach and detach, as the loader's whole process does (it detaches when it exits)
        const ms = runLoop(1, ['/bin/sh', '-c', `echo ${line} > ${MNT}/${FILE} && echo '!deny_exec' > ${MNT}/${FILE}`])[0]!;
        if (i >= 0) shell.push(ms);
      } else {
        // whole process from the C parent, and the loader's own span printed by the child
        const out = loader(['run', '-k', '1', LOADER, 'attach', HOOK, DENY, TARGET]);
        const inner = JSON.parse(out[0]!) as { total_ns: number; load_ns: number };
        const whole = (JSON.parse(out.at(-1)!) as { ns: number[] }).ns[0]!;
        if (i >= 0) {
          span.push(inner.total_ns / 1e6);
          spanLoad.push(inner.load_ns / 1e6);
          proc.push(whole / 1e6);
        }
      }
    }
  }
  f.close();
  result.attach = {
    krsifsWrite: stats(write),
    krsifsShell: stats(shell),
    loaderSpan: stats(span),
    loaderLoad: stats(spanLoad),
    loaderProcess: stats(proc),
  };
}

/**
 * attach of the big fixture (its verifier run is about 500 ms here), in the
 * daemon as it runs in production (no loop monitor), interleaved and rotated
 * with the C loader, twice: to an empty file, where the write also links
 * krsifs's denial observer (a trampoline update of its own that the loader
 * does not make), and to a file that holds deny_exec already (the observer is
 * in; the loader attaches next to both). A second's pause before each timed
 * attach: a detached link is torn down by the kernel after the detach returns.
 */
async function benchAttachBig() {
  say(`attach, big program: ${REPS.big} repetitions of each, to an empty file and next to deny_exec, interleaved`);
  const f = new BehaviourFile(FILE);
  const empty = { write: [] as number[], span: [] as number[] };
  const occupied = { write: [] as number[], span: [] as number[] };
  const loaderSpan = () => (JSON.parse(loader(['attach', HOOK, VERIFIER]).at(-1)!) as { total_ns: number }).total_ns / 1e6;
  for (let i = -1; i < REPS.big; i++) {
    for (const into of i % 2 === 0 ? [empty, occupied] : [occupied, empty]) {
      if (into === occupied) f.write(`${DENY} ${TARGET}`);
      for (const kind of i % 4 < 2 ? ['write', 'loader'] : ['loader', 'write']) {
        await sleep(1100);
        let ms: number;
        if (kind === 'write') {
          ms = f.write(VERIFIER);
          f.write('!bench_verifier');
        } else {
          ms = loaderSpan();
        }
        if (i >= 0) (kind === 'write' ? into.write : into.span).push(ms);
      }
      if (into === occupied) f.write('!deny_exec');
    }
  }
  f.close();
  result.attachBig = {
    empty: { krsifsWrite: stats(empty.write), loaderSpan: stats(empty.span) },
    occupied: { krsifsWrite: stats(occupied.write), loaderSpan: stats(occupied.span) },
  };
}

/** whole-process cat of a behaviour file vs of securityfs's lsm, and per-read latency, with 0, 1 and 30 programs. */
function benchRead() {
  const f = new BehaviourFile(FILE);
  const out: Record<string, unknown> = {};
  for (const [label, setup] of [
    // an empty file: every behaviour's state until something is attached
    ['0', () => 0],
    ['1', () => f.write(`${DENY} ${TARGET}`)],
    ['30', () => f.write(NOOPS30)],
  ] as const) {
    setup();
    const listed = readFileSync(`${MNT}/${FILE}`, 'utf8').split('\n').filter(Boolean).length;
    say(`read with ${listed} programs: ${REPS.catRounds} x ${REPS.cat} cats of each, ${REPS.reads} reads of each`);
    const cat: number[] = [];
    const base: number[] = [];
    // what an operator runs without krsifs to see what is attached
    const bpftool: number[] = [];
    for (let r = 0; r < REPS.catRounds; r++) {
      const a = () => cat.push(...runLoop(REPS.cat, ['/bin/cat', `${MNT}/${FILE}`]));
      const b = () => base.push(...runLoop(REPS.cat, ['/bin/cat', LSM]));
      const c = () => bpftool.push(...runLoop(REPS.cat, [BPFTOOL, 'link', 'show']));
      if (r % 2) (a(), b(), c());
      else (c(), b(), a());
    }
    const half = Math.round(readsFor(`${MNT}/${FILE}`, REPS.reads) / 2);
    const reads = [...readLoop(half, `${MNT}/${FILE}`)];
    const baseReads = [...readLoop(half, LSM)];
    // krsifs's static `hooks` file: the FUSE round trip alone, no kernel query
    const hooksReads = [...readLoop(half, `${MNT}/hooks`)];
    reads.push(...readLoop(half, `${MNT}/${FILE}`));
    baseReads.push(...readLoop(half, LSM));
    hooksReads.push(...readLoop(half, `${MNT}/hooks`));
    out[label] = { listed, cat: stats(cat), catLsm: stats(base), bpftoolLinkShow: stats(bpftool), read: stats(reads), readLsm: stats(baseReads), readHooks: stats(hooksReads) };
    f.write('!*');
  }
  f.close();
  result.read = out;
}

/** exec loop with nothing, with deny_exec attached by the C loader, and by krsifs. */
async function benchHotPath() {
  say(`hot path: ${REPS.execRounds} rounds x ${REPS.execs} fork+exec of /bin/true per configuration, rotating`);
  const f = new BehaviourFile(FILE);
  const times: Record<string, number[]> = { none: [], loader: [], krsifs: [] };
  const configs = ['none', 'loader', 'krsifs'] as const;
  const execs = () => runLoop(REPS.execs, ['/bin/true']);
  // krsifs attaches its observer with a behaviour's first program; the C loader attaches none
  let observed = false;
  for (let r = 0; r < REPS.execRounds; r++) {
    for (let k = 0; k < configs.length; k++) {
      const c = configs[(k + r) % configs.length]!;
      if (c === 'none') {
        times.none!.push(...execs());
      } else if (c === 'krsifs') {
        f.write(`${DENY} ${TARGET}`);
        observed ||= existsSync(OBSERVER_PIN);
        times.krsifs!.push(...execs());
        f.write('!deny_exec');
      } else {
        const child = spawn(LOADER, ['attach', HOOK, DENY, TARGET, '--hold'], { stdio: ['pipe', 'pipe', 'inherit'] });
        await new Promise<void>((resolve, reject) => {
          child.stdout!.once('data', () => resolve());
          child.once('exit', (code) => reject(new Error(`loader --hold exited ${code}`)));
        });
        times.loader!.push(...execs());
        const exited = new Promise((r) => child.once('exit', r));
        child.stdin!.end();
        await exited;
      }
    }
  }
  f.close();
  result.hotPath = { none: stats(times.none!), loader: stats(times.loader!), krsifs: stats(times.krsifs!), observer: observed };
}

/**
 * A burst of refused execs (the C loader's execv loop, no fork between them)
 * while `cat` reads `events`: how fast the refusals came, and whether each one
 * reached the reader as a record or was accounted for in a lost= line.
 */
async function benchDenials() {
  const victim = '/tmp/krsifs-bench-denied';
  writeFileSync(victim, '#!/bin/sh\necho "krsifs-bench: this exec was not refused" >&2\nexit 3\n', { mode: 0o755 });
  const f = new BehaviourFile(FILE);
  const out: Record<string, unknown>[] = [];
  f.write(`${DENY} target=${victim}`);
  try {
    for (const n of BURSTS) {
      say(`denials: a burst of ${n} refused execs while cat reads events`);
      const reader = spawn('cat', [`${MNT}/events`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      reader.stdout!.on('data', (b: Buffer) => (text += b.toString('utf8')));
      await sleep(1000); // the reader's open reaches the daemon before the first refusal
      const burst = JSON.parse(loader(['deny', String(n), victim]).at(-1)!) as { ns: number; eperm: number };
      const t0 = hr();
      const count = () => {
        const lines = text.split('\n');
        return {
          records: lines.filter((l) => l.includes(' program=deny_exec ') && l.includes('action=denied')).length,
          lost: lines.reduce((sum, l) => sum + Number(/ lost=(\d+)/.exec(l)?.[1] ?? 0), 0),
        };
      };
      // wait for the stream to drain: every refusal seen, or 3 s without a new line (30 s at most)
      let last = -1;
      let still = hr();
      while (hr() - t0 < 30_000) {
        const c = count();
        if (c.records + c.lost >= n) break;
        if (c.records + c.lost !== last) [last, still] = [c.records + c.lost, hr()];
        else if (hr() - still > 3000) break;
        await sleep(100);
      }
      const drainMs = hr() - t0;
      reader.kill();
      const c = count();
      out.push({ n, refused: burst.eperm, seconds: burst.ns / 1e9, perSecond: burst.eperm / (burst.ns / 1e9), ...c, drainMs });
    }
  } finally {
    f.write('!deny_exec');
    f.close();
  }
  result.denials = out;
}

/** Attach one-program objects to f until a write fails; the count of programs listed then and each attach's ms. */
function fill(f: BehaviourFile, start: number): { programs: number; refused: string; attachMs: number[] } {
  const attachMs: number[] = [];
  let refused = 'none';
  for (let n = start; n < SINGLES; n++) {
    try {
      attachMs.push(f.write(single(n)));
    } catch (e) {
      refused = errCode(e);
      break;
    }
  }
  const programs = readFileSync(`${MNT}/${f.name}`, 'utf8').split('\n').filter(Boolean).length;
  return { programs, refused, attachMs };
}

function listingTimes(file: string, cats: number, reads: number) {
  return { cat: stats(runLoop(cats, ['/bin/cat', file])), read: stats(readLoop(reads, file)) };
}

function behaviourFiles(): string[] {
  const catalogue = Object.keys(JSON.parse(readFileSync(`${ROOT}/lib/catalogue.json`, 'utf8')) as Record<string, unknown>);
  const present = new Set(readdirSync(MNT));
  return catalogue.filter((b) => present.has(b));
}

/** scale: one hook until the kernel refuses (vs the C loader's count), then every behaviour file at once. */
function benchScale() {
  say('scale: one hook, one program per write, until refused');
  const objs = Array.from({ length: SINGLES }, (_, i) => single(i));
  const base = JSON.parse(loader(['fill', HOOK, ...objs]).at(-1)!) as { programs: number; errno: number };
  const f = new BehaviourFile(FILE);
  const one = fill(f, 0);
  // krsifs's denial observer takes one of the hook's links (README: Events)
  const observer = existsSync(OBSERVER_PIN) ? 1 : 0;
  const oneList = listingTimes(`${MNT}/${FILE}`, REPS.scaleCat, readsFor(`${MNT}/${FILE}`, REPS.scaleReads, 10_000));
  const lsm = listingTimes(LSM, REPS.scaleCat, REPS.scaleReads);
  f.write('!*');
  f.close();

  const files = behaviourFiles();
  say(`scale: every behaviour file at once (${files.length} files): 30 programs in one write, then one per write until refused`);
  const per: Record<string, { programs: number; refused: string }> = {};
  const t0 = hr();
  const open = files.map((b) => new BehaviourFile(b));
  for (const bf of open) {
    let start = 0;
    try {
      bf.write(NOOPS30);
      start = 30;
    } catch (e) {
      say(`${bf.name}: 30 programs at once refused (${errCode(e)}); one at a time`);
    }
    const r = fill(bf, start);
    per[bf.name] = { programs: r.programs, refused: r.refused };
  }
  const fillMs = hr() - t0;
  const totalPrograms = Object.values(per).reduce((a, b) => a + b.programs, 0);
  say(`scale: ${totalPrograms} programs attached across ${files.length} files; timing cat of each`);
  const cats: number[] = [];
  const reads: number[] = [];
  const baseCats: number[] = [];
  const n = fit(Math.round(REPS.scaleCat / 4), stats(readLoop(5, `${MNT}/${files[0]}`)).median + 10, 2_000, 5);
  for (const b of files) {
    cats.push(...runLoop(n, ['/bin/cat', `${MNT}/${b}`]));
    baseCats.push(...runLoop(n, ['/bin/cat', LSM]));
    reads.push(...readLoop(n * 2, `${MNT}/${b}`));
  }
  const rssAll = rssKiB(daemon!.pid!) / 1024;
  for (const bf of open) {
    bf.write('!*');
    bf.close();
  }
  result.scale = {
    oneHook: { programs: one.programs, observer, refused: one.refused, attach: stats(one.attachMs), ...oneList, loaderPrograms: base.programs, loaderErrno: base.errno, lsm },
    allFiles: { files: files.length, programs: totalPrograms, perFile: per, fillMs: Math.round(fillMs), cat: stats(cats), catLsm: stats(baseCats), read: stats(reads), daemonRssMiB: Math.round(rssAll * 10) / 10 },
  };
}

/** memory: the daemon's RSS idle and with 30 programs vs a bare node process. */
async function benchMemory(pid: number) {
  say('memory: daemon idle, daemon with 30 programs, bare node');
  const idle = await rssMiB(pid);
  const f = new BehaviourFile(FILE);
  f.write(NOOPS30);
  await sleep(1000);
  const with30 = await rssMiB(pid);
  f.write('!*');
  f.close();
  const bare = spawn('node', ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  await sleep(3000);
  const bareRss = await rssMiB(bare.pid!);
  bare.kill('SIGKILL');
  result.memory = { daemonIdleMiB: idle, daemon30MiB: with30, bareNodeMiB: bareRss };
}

/** event loop: the verifier's time on the big fixture (C loader), and the daemon's worst loop delay while krsifs loads it. */
async function benchEventLoop() {
  say(`event loop: ${REPS.verify} verifications of the big fixture by the C loader, then ${REPS.verify} attaches through krsifs`);
  const verify = [];
  for (let i = 0; i < REPS.verify; i++) verify.push(JSON.parse(loader(['verify', HOOK, VERIFIER]).at(-1)!) as { verify_us: number; load_ns: number; processed_insns: number });
  const ref = startReference();
  // idle: the same daemon, nothing asked of it, over about as many seconds
  await sleep(1500);
  const idleFrom = Date.now();
  await sleep(1000 * (REPS.verify + 1));
  const idleTo = Date.now();
  const f = new BehaviourFile(FILE);
  const during: number[] = [];
  const duringRef: number[] = [];
  const small: number[] = [];
  for (let i = 0; i < REPS.verify; i++) {
    await sleep(1100);
    let from = Date.now();
    f.write(VERIFIER);
    let to = Date.now();
    f.write('!bench_verifier');
    await sleep(1100);
    during.push(worstDelay(from, to));
    duringRef.push(worstDelay(from, to, REF_LOG));
    // an ordinary attach, for comparison
    from = Date.now();
    f.write(`${DENY} ${TARGET}`);
    to = Date.now();
    f.write('!deny_exec');
    await sleep(1100);
    small.push(worstDelay(from, to));
  }
  f.close();
  ref.kill('SIGKILL');
  result.eventLoop = {
    verifyUs: stats(verify.map((v) => v.verify_us / 1000)),
    verifierLoad: stats(verify.map((v) => v.load_ns / 1e6)),
    processedInsns: verify[0]?.processed_insns,
    maxDelayDuringVerify: stats(during),
    refMaxDelayDuringVerify: stats(duringRef),
    maxDelayDuringSmallAttach: stats(small),
    maxDelayIdle: worstDelay(idleFrom, idleTo),
    refMaxDelayIdle: worstDelay(idleFrom, idleTo, REF_LOG),
    note: 'delays are the monitors\' raw max_ms (each includes the 1 ms sampling period); ref = a bare node process with the same monitor, running at the same time',
  };
}

async function main() {
  for (const need of [LOADER, DENY, NOOPS30, VERIFIER, single(0)]) {
    if (!existsSync(need)) throw new Error(`${need} is missing: run scripts/bench.sh (it builds it) before the VM`);
  }
  env();
  try {
    let pid = await startDaemon(false);
    say(`daemon pid ${pid} mounted ${MNT}`);
    await sleep(2000);
    if (want('memory')) await benchMemory(pid);
    if (want('attach')) benchAttach();
    if (want('attach')) await benchAttachBig();
    if (want('read')) benchRead();
    if (want('hot')) await benchHotPath();
    if (want('denials')) await benchDenials();
    if (want('scale')) benchScale();
    if (want('loop')) {
      await stopDaemon();
      pid = await startDaemon(true);
      say(`daemon pid ${pid} mounted ${MNT}, KRSIFS_LOOP_MONITOR=1`);
      await sleep(2000);
      await benchEventLoop();
    }
  } catch (e) {
    result.error = (e as Error).stack ?? String(e);
    say(`failed: ${(e as Error).message}`);
    say(`daemon log tail:\n${readFileSync(LOG, 'utf8').split('\n').slice(-15).join('\n')}`);
  } finally {
    await stopDaemon();
  }
  process.stdout.write(`\n${BEGIN}\n${JSON.stringify(result)}\n${END}\n`);
  process.exitCode = result.error ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
