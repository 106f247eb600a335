// A Debian 12 machine with real systemd, for the service's test
// (test/vm/systemd.test.ts): a minbase root filesystem made by mmdebstrap
// from Debian's archive (cached under .cache/systemd-vm/, ~230 MB, ~45 s
// cold), with krsifs installed and enabled in it by `krsifs install --root`,
// booted by Debian's BPF LSM kernel (the one `krsifs vm` uses) as its
// initramfs, systemd as init. A check unit of the test's, ordered after the
// login prompts, reports through /dev/kmsg (the serial getty hangs up
// everything else that writes to ttyS0), with the console prefix of
// lib/vm/run.ts, and powers the machine off.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConsoleParser, fetchKernel, findQemu, type Kernel } from '../../lib/vm/index.js';
import { cacheDir, projectRoot, withLock } from '../../lib/vm/paths.js';

const run = promisify(execFile);
const MIRROR = 'http://deb.debian.org/debian';
const PACKAGES = ['systemd', 'systemd-sysv', 'kmod', 'udev'];

/** The cached minbase root with systemd: built once per package list, in a temporary directory then renamed in. */
export async function debianRoot(): Promise<string> {
  const key = createHash('sha256').update(`bookworm minbase ${PACKAGES.join(',')}`).digest('hex').slice(0, 12);
  const base = path.join(cacheDir(), '..', 'systemd-vm');
  const dir = path.join(base, `root-${key}`);
  await mkdir(base, { recursive: true });
  return withLock(path.join(base, 'root.lock'), async () => {
    if (existsSync(path.join(dir, 'etc/os-release'))) return dir;
    const tmp = `${dir}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await run('mmdebstrap', ['--quiet', '--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', tmp, MIRROR], { maxBuffer: 1 << 26 });
    await rename(tmp, dir);
    return dir;
  });
}

/** Shared libraries ldd names, as absolute paths. */
async function libraries(files: string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const f of files) {
    const { stdout } = await run('ldd', [f]);
    for (const line of stdout.split('\n')) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) out.add(m[1]!);
    }
  }
  return [...out];
}

export interface SystemdImage {
  cpio: string;
  kernel: Kernel;
  /** From the cached root to the cpio, in ms (mmdebstrap included when it ran). */
  buildMs: number;
}

/**
 * The machine: the cached root, copied; krsifs installed and enabled by its
 * own `krsifs install --root`; node and the libraries it and the addon need;
 * the fuse module (found by modprobe@fuse through depmod's index); `files`
 * (path -> text, mode 0755 for those under /usr/local/sbin, else 0644); the
 * units in `enable` enabled. One newc cpio.
 */
export async function systemdImage(files: Record<string, string>, enable: string[]): Promise<SystemdImage> {
  const t0 = Date.now();
  const root = await debianRoot();
  const kernel = await fetchKernel(cacheDir());
  const work = path.join(path.dirname(root), 'work');
  await rm(work, { recursive: true, force: true });
  await run('cp', ['-a', root, work]);
  const project = projectRoot();
  await run(process.execPath, [path.join(project, 'dist/lib/cli.js'), 'install', '--root', work]);
  const node = process.execPath;
  for (const f of [node, ...(await libraries([node, path.join(project, 'build/Release/krsifs.node')]))]) {
    // the root's own copy of a library wins (the same Debian release); node and what the root lacks come from here
    if (existsSync(path.join(work, f)) && f !== node) continue;
    await mkdir(path.join(work, path.dirname(f)), { recursive: true });
    await copyFile(f, path.join(work, f));
  }
  const fuse = path.join(work, 'lib/modules', kernel.version, 'kernel/fs/fuse');
  await mkdir(fuse, { recursive: true });
  await copyFile(kernel.modules['kernel/fs/fuse/fuse.ko']!, path.join(fuse, 'fuse.ko'));
  await run('depmod', ['-b', work, kernel.version]);
  for (const [p, text] of Object.entries(files)) {
    await mkdir(path.join(work, path.dirname(p)), { recursive: true });
    await writeFile(path.join(work, p), text);
    await chmod(path.join(work, p), p.includes('/sbin/') || p.startsWith('/opt/') ? 0o755 : 0o644);
  }
  for (const u of enable) await run('systemctl', [`--root=${work}`, 'enable', u]);
  const cpio = path.join(path.dirname(root), 'machine.cpio');
  await run('sh', ['-c', `cd "${work}" && find . | cpio -o -H newc --quiet > "${cpio}.tmp" && mv "${cpio}.tmp" "${cpio}"`]);
  await rm(work, { recursive: true, force: true });
  return { cpio, kernel, buildMs: Date.now() - t0 };
}

export interface SystemdBoot {
  /** The whole console, escape sequences removed. */
  console: string;
  /** What the check printed between its "running" and "exit" lines. */
  output: string;
  exitCode: number | null;
  bootMs: number;
}

/** Boot it; the check unit says booted/running/exit with the nonce it reads from /proc/cmdline. */
export function bootSystemd(img: SystemdImage, timeoutSec = 240): Promise<SystemdBoot> {
  const nonce = randomBytes(6).toString('hex');
  const args = [
    '-accel', 'tcg,thread=multi', '-cpu', 'max,la57=off,cx16=off', '-smp', '2', '-m', '2048', '-nographic', '-no-reboot', '-nic', 'none',
    '-kernel', img.kernel.vmlinuz, '-initrd', img.cpio,
    '-append', `console=ttyS0 rdinit=/sbin/init lsm=lockdown,capability,bpf panic=-1 printk.devkmsg=on systemd.show_status=1 krsifs_nonce=${nonce}`,
  ];
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(findQemu(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let all = '';
    const out: Buffer[] = [];
    let bootMs = 0;
    const parser = new ConsoleParser(nonce, {
      booted: () => (bootMs = Date.now() - t0),
      output: (b) => out.push(b),
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the systemd machine did not power off in ${timeoutSec} s; console:\n${all.slice(-6000)}`));
    }, timeoutSec * 1000);
    child.stdout.on('data', (b: Buffer) => {
      all += b.toString('latin1');
      parser.feed(b);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const strip = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
      // kmsg lines carry the kernel's "[   12.345678] " before the text
      const output = strip(Buffer.concat(out).toString('utf8')).replace(/^\[\s*\d+\.\d+\] /gm, '');
      resolve({ console: strip(Buffer.from(all, 'latin1').toString('utf8')), output, exitCode: parser.exitCode ?? null, bootMs });
    });
  });
}
