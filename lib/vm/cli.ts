// `krsifs vm [--kernel 6.1|6.12|PACKAGE] [--lsm LIST] [--accel tcg|kvm]
//            [--timeout S] [--boot-timeout S] [--no-mount] [--rebuild]
//            [--prepare] [--quiet] [-- COMMAND...]`
// Exit status: the command's; 125 when the VM itself failed; 2 on bad usage.
import { KrsiError } from '../errors.js';
import { Progress, seconds } from './progress.js';
import { parseKernelSpec } from './kernel.js';
import { checkAccel, findQemu, LSM_WITH_BPF, prepareVm, runInVm } from './run.js';

export const USAGE = `usage: krsifs vm [options] [-- COMMAND...]

Boot a Debian cloud kernel (BPF LSM enabled) in QEMU with this checkout at
/krsifs, mount krsifs at /mnt/krsi, run COMMAND with sh -c in /krsifs, power off.
Without COMMAND: a shell on the console (exit powers off; Ctrl-A x kills QEMU).
One COMMAND word is a shell script as is; several are quoted and joined, like exec.
The command's stdout and stderr both arrive on stdout (one serial console);
its stdin is /dev/null. Exit status: the command's, 125 if the VM failed, 2 on usage.

  --kernel K           6.1 or 6.12 (the newest Debian cloud kernel of that series; 6.12
                       from bookworm-backports), a full linux-image-...-cloud-amd64
                       package name, or stock (default: the distribution's own kernel)
  --lsm LIST           the kernel's lsm= list (default ${LSM_WITH_BPF})
  --accel tcg|kvm      QEMU accelerator (default tcg: KVM hangs on some hosts)
  --timeout S          kill the VM after S seconds in all (default 900)
  --boot-timeout S     kill it if the guest has not booted after S seconds (default 120)
  --no-mount           do not start the krsifs daemon on /mnt/krsi
  --rebuild            rebuild the initramfs even if no input changed
  --prepare            only fetch the kernel and build the image
  -q, --quiet          no step lines on stderr

Environment: KRSIFS_QEMU (QEMU binary), KRSIFS_VM_CACHE (default .cache/vm),
KRSIFS_VM_KERNEL (the default of --kernel), KRSIFS_VM_KERNEL_PKG (a package
used as is, whatever --kernel says).`;

/** Quote one word for sh. */
export function shellQuote(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export interface VmArgs {
  accel: string;
  kernel: string | undefined;
  lsm: string | undefined;
  timeoutSec: number | undefined;
  bootTimeoutSec: number;
  mount: boolean;
  rebuild: boolean;
  prepare: boolean;
  quiet: boolean;
  help: boolean;
  command: string | undefined;
}

/** Errors: EINVAL with the offending option. */
export function parseVmArgs(argv: string[]): VmArgs {
  const a: VmArgs = { accel: 'tcg', kernel: undefined, lsm: undefined, timeoutSec: undefined, bootTimeoutSec: 120, mount: true, rebuild: false, prepare: false, quiet: false, help: false, command: undefined };
  const seconds = (opt: string, v: string | undefined) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new KrsiError('EINVAL', `vm: ${opt} needs a number of seconds, not '${v ?? ''}'`);
    return n;
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const [opt, inline] = argv[i]!.startsWith('--') && argv[i]!.includes('=') ? (argv[i]!.split(/=(.*)/s) as [string, string]) : [argv[i]!, undefined];
    const value = () => inline ?? argv[++i];
    if (opt === '--') {
      i++;
      break;
    } else if (opt === '--accel') a.accel = value() ?? '';
    else if (opt === '--kernel') a.kernel = value() ?? '';
    else if (opt === '--lsm') {
      a.lsm = value() ?? '';
      if (!/^[a-z0-9_]+(,[a-z0-9_]+)*$/.test(a.lsm)) throw new KrsiError('EINVAL', `vm: --lsm needs a comma-separated list of LSM names, not '${a.lsm}'`);
    }
    else if (opt === '--timeout') a.timeoutSec = seconds(opt, value());
    else if (opt === '--boot-timeout') a.bootTimeoutSec = seconds(opt, value());
    else if (opt === '--no-mount') a.mount = false;
    else if (opt === '--rebuild') a.rebuild = true;
    else if (opt === '--prepare') a.prepare = true;
    else if (opt === '-q' || opt === '--quiet') a.quiet = true;
    else if (opt === '-h' || opt === '--help') a.help = true;
    else if (opt.startsWith('-')) throw new KrsiError('EINVAL', `vm: unknown option ${opt}`);
    else break; // the command starts here
  }
  const words = argv.slice(i);
  if (words.length === 1) a.command = words[0];
  else if (words.length > 1) a.command = words.map(shellQuote).join(' ');
  checkAccel(a.accel);
  if (a.kernel !== undefined) parseKernelSpec(a.kernel);
  return a;
}

export async function vmMain(argv: string[]): Promise<number> {
  let args: VmArgs;
  try {
    args = parseVmArgs(argv);
  } catch (e) {
    process.stderr.write(`krsifs vm: ${(e as Error).message.replace(/^vm: /, '')}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const progress = new Progress(args.quiet ? null : process.stderr);
  try {
    if (args.prepare) {
      findQemu();
      await prepareVm({ rebuild: args.rebuild, kernel: args.kernel, progress });
      return 0;
    }
    const r = await runInVm({
      command: args.command,
      timeoutSec: args.timeoutSec,
      bootTimeoutSec: args.bootTimeoutSec,
      mount: args.mount,
      accel: args.accel,
      kernel: args.kernel,
      lsm: args.lsm,
      rebuild: args.rebuild,
      progress,
      onOutput: (b) => process.stdout.write(b),
    });
    progress.line(`exit status ${r.exitCode}; total ${seconds(r.totalMs)} (prepare ${seconds(r.prepareMs)}, boot ${seconds(r.bootMs)})`);
    return r.exitCode;
  } catch (e) {
    const err = KrsiError.from(e, 'vm');
    process.stderr.write(`krsifs vm: ${err.message.replace(/^vm: /, '')}\n`);
    return 125;
  }
}
