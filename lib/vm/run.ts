// Boot the VM and run one command in it (or a shell). The guest's console
// (ttyS0) is QEMU's stdout: kernel boot noise, then the init's lines
// (prefixed "krsifs-vm/<nonce>: "), the command's output, and the exit marker.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsc, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { buildImage, type Image } from './image.js';
import { fetchKernel, parseKernelSpec, type Kernel } from './kernel.js';
import { cacheDir, projectRoot } from './paths.js';
import { Progress, seconds } from './progress.js';

export const ACCELS = ['tcg', 'kvm'] as const;
export type Accel = (typeof ACCELS)[number];

export interface RunOptions {
  /** A shell command line, run with `sh -c` in /krsifs. Absent: an interactive shell on the console. */
  command?: string;
  /** Whole run, boot included, in seconds; default 900 (none for a shell). */
  timeoutSec?: number;
  /** Until the init's "booted" line, in seconds; default 120. */
  bootTimeoutSec?: number;
  /** Start the krsifs daemon on /mnt/krsi before the command; default true. */
  mount?: boolean;
  /**
   * Shell the guest's init sources before it starts the daemon: files to put
   * in place (a policy directory), and KRSIFS_MOUNT_ARGS, more arguments for
   * `krsifs mount`. As a boot script of a real machine would.
   */
  boot?: string;
  /** tcg (default; KVM hangs on the machines this was written on) or kvm. */
  accel?: string;
  /** Rebuild the image even when its inputs did not change. */
  rebuild?: boolean;
  /** `--kernel`: 6.1, 6.12, a full package name, or stock; default $KRSIFS_VM_KERNEL, else stock. */
  kernel?: string;
  /** The kernel's `lsm=` list; default LSM_WITH_BPF. */
  lsm?: string;
  /** Each piece of the command's output (stdout and stderr, merged by the console), as it arrives. */
  onOutput?: (chunk: Buffer) => void;
  /** Where step lines go; default none (the CLI passes stderr). */
  progress?: Progress | null;
}

export interface RunResult {
  /** The command's exit status (125 when the guest could not run it). */
  exitCode: number;
  /** Everything the command printed. */
  output: string;
  /** From spawning QEMU to the guest's "booted" line. */
  bootMs: number;
  /** From the call to QEMU's exit, kernel fetch and image build included. */
  totalMs: number;
  /** Kernel fetch and image build. */
  prepareMs: number;
  /** The init's own lines (mount result, errors), without prefix. */
  messages: string[];
  kernel: Kernel;
  image: Image;
}

/** The QEMU binary: $KRSIFS_QEMU or qemu-system-x86_64 on PATH. Errors: ENOENT with the apt-get line. */
export function findQemu(): string {
  const want = process.env.KRSIFS_QEMU || 'qemu-system-x86_64';
  const candidates = want.includes('/') ? [want] : (process.env.PATH ?? '').split(':').map((d) => path.join(d || '.', want));
  for (const c of candidates) {
    try {
      accessSync(c, fsc.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new KrsiError('ENOENT', `vm: ${want} not found${process.env.KRSIFS_QEMU ? ' (KRSIFS_QEMU)' : ''}: apt-get install qemu-system-x86`, {
    details: { qemu: want },
  });
}

/** Errors: EINVAL for anything but tcg or kvm. */
export function checkAccel(accel: string | undefined): Accel {
  const a = accel ?? 'tcg';
  if (!(ACCELS as readonly string[]).includes(a)) throw new KrsiError('EINVAL', `vm: --accel must be tcg or kvm, not '${a}'`, { details: { accel: a } });
  return a as Accel;
}

/** The guest's LSMs: BPF LSM active, nothing else that could refuse what a test expects to pass. */
export const LSM_WITH_BPF = 'lockdown,capability,bpf';

/**
 * The CPU QEMU emulates under TCG. `max` offers 5-level paging and
 * cmpxchg16b; 6.12 then crashes at boot (la57) or intermittently in slub's
 * cmpxchg16b path under multi-threaded TCG (a double fault, "Fatal exception
 * in interrupt"). Without both it boots 6.1 and 6.12 every time here.
 */
export const TCG_CPU = 'max,la57=off,cx16=off';

export function qemuArgs(o: { accel: Accel; kernel: Kernel; image: Image; nonce: string; cmdFile?: string; bootFile?: string; mount: boolean; lsm?: string }): string[] {
  const append = [
    'console=ttyS0', 'quiet', 'loglevel=3', `lsm=${o.lsm ?? LSM_WITH_BPF}`, 'panic=-1',
    `krsifs_nonce=${o.nonce}`, `krsifs_mode=${o.cmdFile ? 'cmd' : 'shell'}`, `krsifs_mount=${o.mount ? 1 : 0}`,
  ].join(' ');
  return [
    ...(o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', TCG_CPU]),
    '-smp', '2', '-m', '2048', '-nographic', '-no-reboot', '-nic', 'none',
    '-kernel', o.kernel.vmlinuz, '-initrd', o.image.path, '-append', append,
    ...(o.cmdFile ? ['-fw_cfg', `name=opt/krsifs/cmd,file=${o.cmdFile}`] : []),
    ...(o.bootFile ? ['-fw_cfg', `name=opt/krsifs/boot,file=${o.bootFile}`] : []),
  ];
}

/**
 * Splits the console into the command's output and the init's lines. Works
 * on latin1 strings (one char per byte) so output bytes pass unchanged, and
 * holds back only a tail that may be the start of the prefix.
 */
export class ConsoleParser {
  readonly prefix: string;
  booted = false;
  /** The kernel printed something: the firmware handed over to it. */
  kernelStarted = false;
  /** The kernel said it panicked, before the init's "booted" line. */
  kernelPanicked = false;
  exitCode: number | undefined;
  private buf = '';
  private raw = '';

  constructor(
    nonce: string,
    private readonly on: { booted?: () => void; output?: (b: Buffer) => void; message?: (m: string) => void; exit?: (code: number) => void },
  ) {
    this.prefix = `krsifs-vm/${nonce}: `;
  }

  feed(chunk: Buffer): void {
    const s = chunk.toString('latin1');
    this.raw = (this.raw + s).slice(-16384);
    // a kernel's console line starts with its timestamp; SeaBIOS prints none
    if (!this.kernelStarted && /\[\s*\d+\.\d+\]|Linux version /.test(this.raw)) this.kernelStarted = true;
    // only before the init's first line: what a command prints after it is its own
    if (!this.booted && !this.kernelPanicked && /Kernel panic - not syncing/.test(this.raw)) this.kernelPanicked = true;
    this.buf += s;
    const P = this.prefix;
    for (;;) {
      const i = this.buf.indexOf(P);
      if (i < 0) {
        let keep = Math.min(P.length - 1, this.buf.length);
        while (keep > 0 && !this.buf.endsWith(P.slice(0, keep))) keep--;
        this.emit(this.buf.slice(0, this.buf.length - keep));
        this.buf = this.buf.slice(this.buf.length - keep);
        return;
      }
      this.emit(this.buf.slice(0, i));
      const nl = this.buf.indexOf('\n', i);
      if (nl < 0) {
        this.buf = this.buf.slice(i);
        return;
      }
      const msg = Buffer.from(this.buf.slice(i + P.length, nl).replace(/\r$/, ''), 'latin1').toString('utf8');
      this.buf = this.buf.slice(nl + 1);
      this.handle(msg);
    }
  }

  private emit(s: string) {
    // before "booted" it is the kernel's boot log (kept for the tail); after "exit", the power-off
    if (!s || !this.booted || this.exitCode !== undefined) return;
    this.on.output?.(Buffer.from(s, 'latin1'));
  }

  private handle(msg: string) {
    const exit = /^exit (\d+)$/.exec(msg);
    if (msg === 'booted' && !this.booted) {
      this.booted = true;
      this.on.booted?.();
    } else if (exit && this.exitCode === undefined) {
      this.exitCode = Number(exit[1]);
      this.on.exit?.(this.exitCode);
    } else {
      this.on.message?.(msg);
    }
  }

  /** The console's last lines, as printed. */
  tail(n = 30): string {
    return Buffer.from(this.raw, 'latin1').toString('utf8').replace(/\r/g, '').split('\n').slice(-n).join('\n');
  }
}

/** Kernel and image, fetched and built as needed, with step lines. */
export async function prepareVm(o: { rebuild?: boolean; kernel?: string; progress?: Progress | null } = {}): Promise<{ kernel: Kernel; image: Image }> {
  const progress = o.progress ?? new Progress(null);
  const cache = cacheDir();
  const spec = parseKernelSpec(o.kernel ?? process.env.KRSIFS_VM_KERNEL);
  const kernel = await progress.step(
    'fetch kernel',
    () => fetchKernel(cache, spec, (note) => progress.line(`note: ${note}`)),
    (k) => `kernel ${k.version} (${k.downloaded ? 'downloaded' : 'cached'})`,
  );
  const image = await progress.step(
    'build image',
    () => buildImage(kernel, { root: projectRoot(), cache, rebuild: o.rebuild ?? false }),
    (i) => `image ${(i.size / 1e6).toFixed(0)} MB, ${i.files} entries (${i.rebuilt ? 'built' : 'up to date'})`,
  );
  if (image.missing.length) progress.line(`note: not built, so not in the image: ${image.missing.join(', ')}; run scripts/build.sh`);
  return { kernel, image };
}

/**
 * Boot the VM, run the command, power off.
 *
 * Errors (KrsiError): EINVAL for a bad accel; ENOENT when QEMU (or apt, busybox,
 * bpftool) is missing; EIO when the kernel cannot be fetched or QEMU dies before
 * the guest reports an exit status; ETIMEDOUT when the guest does not boot in
 * bootTimeoutSec or the run does not end in timeoutSec (QEMU is killed). The
 * messages of the last two carry the console's last 30 lines.
 */
export async function runInVm(opts: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const accel = checkAccel(opts.accel);
  parseKernelSpec(opts.kernel ?? process.env.KRSIFS_VM_KERNEL);
  const qemu = findQemu();
  const progress = opts.progress ?? new Progress(null);
  const { kernel, image } = await prepareVm({ rebuild: opts.rebuild ?? false, kernel: opts.kernel, progress });
  const prepareMs = Date.now() - t0;
  const nonce = randomBytes(6).toString('hex');
  const shell = opts.command === undefined;
  const mount = opts.mount ?? true;
  const tmp = await mkdtemp(path.join(tmpdir(), 'krsifs-vm-'));
  try {
    let cmdFile: string | undefined;
    if (!shell) {
      cmdFile = path.join(tmp, 'cmd');
      await writeFile(cmdFile, opts.command!);
    }
    let bootFile: string | undefined;
    if (opts.boot !== undefined) {
      bootFile = path.join(tmp, 'boot');
      await writeFile(bootFile, opts.boot);
    }
    const args = qemuArgs({ accel, kernel, image, nonce, cmdFile, bootFile, mount, lsm: opts.lsm });
    const o = { ...opts, shell, nonce, progress, t0, prepareMs, kernel, image };
    try {
      return await boot(qemu, args, o);
    } catch (e) {
      // Two failures come before anything of ours runs, so one more boot is
      // safe: QEMU under TCG now and then hangs in SeaBIOS ("Booting from
      // ROM") before the kernel runs, and 6.12 under multi-threaded TCG now
      // and then panics in its own start-up (an int3 left by the kernel's
      // text patching, taken in sched_clock_cpu), before the init's first
      // line. Any other failure, or either one twice, is reported.
      const why = e instanceof KrsiError && (e.details?.inFirmware ? 'QEMU hung in the firmware before the kernel ran' : e.details?.panicBeforeInit ? 'the kernel panicked before the init ran' : null);
      if (!why) throw e;
      progress.line(`note: ${why}; booting once more`);
      return await boot(qemu, args, o);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function boot(
  qemu: string,
  args: string[],
  o: Omit<RunOptions, 'kernel'> & { shell: boolean; nonce: string; progress: Progress; t0: number; prepareMs: number; kernel: Kernel; image: Image },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    let bootMs = 0;
    const out: Buffer[] = [];
    const messages: string[] = [];
    let stderr = '';
    let failure: KrsiError | undefined;
    const timers: NodeJS.Timeout[] = [];
    o.progress.begin('boot');
    // setpriv --pdeathsig: QEMU dies with us even when we are killed by a
    // signal that skips 'exit' handlers (a test runner's SIGTERM, say).
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
    const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...args]] : [qemu, args];
    const child = spawn(file, argv, { stdio: [o.shell ? 'inherit' : 'ignore', 'pipe', 'pipe'] });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const parser = new ConsoleParser(o.nonce, {
      booted: () => {
        bootMs = Date.now() - spawnedAt;
        clearTimeout(bootTimer);
        o.progress.line(`booted in ${seconds(bootMs)}`);
      },
      output: (b) => {
        out.push(b);
        o.onOutput?.(b);
      },
      message: (m) => {
        messages.push(m);
        o.progress.line(m);
      },
      exit: () => {
        // poweroff -f should end QEMU at once; do not wait forever if it does not
        timers.push(setTimeout(() => child.kill('SIGKILL'), 15_000));
      },
    });
    const fail = (code: string, msg: string, extra: Record<string, unknown> = {}) => {
      if (failure || parser.exitCode !== undefined) return;
      failure = new KrsiError(code, msg, { details: { qemu, args, ...extra } });
      child.kill('SIGKILL');
    };
    const bootTimeout = o.bootTimeoutSec ?? 120;
    const bootTimer = setTimeout(() => {
      const firmware = parser.kernelStarted ? '' : '; the console shows no kernel output: QEMU hung in the firmware';
      fail('ETIMEDOUT', `vm: the guest did not boot in ${bootTimeout} s (no "booted" line)${firmware}`, {
        inFirmware: !parser.kernelStarted,
        panicBeforeInit: parser.kernelPanicked, // a panic that hung instead of ending QEMU
      });
    }, bootTimeout * 1000);
    timers.push(bootTimer);
    const timeout = o.timeoutSec ?? (o.shell ? 0 : 900);
    if (timeout > 0) {
      timers.push(setTimeout(() => fail('ETIMEDOUT', `vm: the command did not finish in ${timeout} s (--timeout)`), timeout * 1000));
    }
    child.stdout.on('data', (b: Buffer) => parser.feed(b));
    child.stderr.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-8192);
    });
    child.on('error', (e) => fail('EIO', `vm: cannot run ${qemu}: ${e.message}`));
    child.on('close', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      process.removeListener('exit', killOnExit);
      if (!parser.booted) o.progress.line('boot failed');
      const tail = () =>
        `\n--- last console lines ---\n${parser.tail(30).trim() || '(none)'}` + (stderr.trim() ? `\n--- qemu stderr ---\n${stderr.trim().split('\n').slice(-10).join('\n')}` : '');
      if (parser.exitCode !== undefined) {
        resolve({
          exitCode: parser.exitCode,
          output: Buffer.concat(out).toString('utf8'),
          bootMs,
          totalMs: Date.now() - o.t0,
          prepareMs: o.prepareMs,
          messages,
          kernel: o.kernel,
          image: o.image,
        });
      } else if (failure) {
        failure.message += tail();
        reject(failure);
      } else {
        const how = signal ? `signal ${signal}` : `status ${code}`;
        const when = parser.booted ? 'before the command finished' : 'before the guest booted';
        const hint = !parser.booted && args.includes('kvm') ? ' (QEMU with KVM hangs or aborts on some hosts: try --accel tcg)' : '';
        const panicBeforeInit = !parser.booted && parser.kernelPanicked;
        reject(new KrsiError('EIO', `vm: qemu exited (${how}) ${when}${hint}${tail()}`, { details: { qemu, args, code, signal, panicBeforeInit } }));
      }
    });
  });
}
