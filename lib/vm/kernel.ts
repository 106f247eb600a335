// The guest kernel: Debian's stock cloud kernel (CONFIG_BPF_LSM=y, BTF,
// FUSE as a module), fetched with apt-get and kept in the cache. The version
// is resolved at run time because Debian moves the ABI number with every
// point release and removes old packages from the archive.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { withLock } from './paths.js';

/** The metapackage that always depends on the current cloud kernel. */
export const KERNEL_META = 'linux-image-cloud-amd64';

export interface Kernel {
  /** The package, e.g. linux-image-6.1.0-56-cloud-amd64. */
  pkg: string;
  /** `uname -r` in the guest, e.g. 6.1.0-56-cloud-amd64. */
  version: string;
  dir: string;
  vmlinuz: string;
  config: string;
  /** Modules the guest init insmods, by their path under /lib/modules/<version>/. */
  modules: Record<string, string>;
  /** True when this call downloaded it. */
  downloaded: boolean;
}

/** The modules the guest needs, relative to lib/modules/<version>/. */
const MODULES = [
  'kernel/fs/fuse/fuse.ko',
  'kernel/drivers/firmware/qemu_fw_cfg.ko',
  // for the policy tests (test/vm/policies.test.ts): modules to allow and refuse, loop devices to mount
  'kernel/drivers/net/dummy.ko',
  'kernel/drivers/block/loop.ko',
];

/** A complete cache dir that has every module of MODULES (a cache from before a module was added does not). */
function complete(dir: string): boolean {
  return existsSync(path.join(dir, '.complete')) && MODULES.every((m) => existsSync(path.join(dir, path.basename(m))));
}

async function tool(cmd: string, args: string[], cwd?: string) {
  try {
    return await execa(cmd, args, { reject: false, cwd, env: { LC_ALL: 'C' }, stdin: 'ignore' });
  } catch (e) {
    throw new KrsiError('ENOENT', `fetch kernel: cannot run ${cmd}: ${(e as Error).message}; the VM needs a Debian host (apt)`);
  }
}

function lastLines(s: string, n = 3): string {
  return s.trim().split('\n').slice(-n).join(' / ');
}

async function dependsOf(meta: string): Promise<string | undefined> {
  const r = await tool('apt-cache', ['depends', meta]);
  if (r.exitCode !== 0) return undefined;
  return /Depends:\s*(linux-image-\S+)/.exec(r.stdout)?.[1];
}

/**
 * apt-cache takes about a second here (no pkgcache.bin in containers), so the
 * answer is kept until apt's lists change (apt-get update renames files into
 * /var/lib/apt/lists, which moves the directory's mtime).
 */
async function dependsOfMemo(meta: string, cache: string): Promise<string | undefined> {
  const lists = await stat('/var/lib/apt/lists').then((s) => String(s.mtimeMs)).catch(() => '');
  const memo = path.join(cache, 'kernel', 'resolved.json');
  const old = JSON.parse(await readFile(memo, 'utf8').catch(() => '{}')) as { meta?: string; lists?: string; pkg?: string };
  if (lists && old.meta === meta && old.lists === lists && old.pkg) return old.pkg;
  const pkg = await dependsOf(meta);
  if (pkg && lists) {
    await mkdir(path.dirname(memo), { recursive: true });
    await writeFile(memo, JSON.stringify({ meta, lists, pkg }));
  }
  return pkg;
}

/**
 * The kernel package to use: $KRSIFS_VM_KERNEL_PKG, or what the metapackage
 * depends on now (after an `apt-get update` if apt does not know it), or,
 * when apt cannot say, the newest kernel already in the cache.
 */
export async function resolveKernelPackage(cache: string): Promise<string> {
  const pinned = process.env.KRSIFS_VM_KERNEL_PKG;
  if (pinned) return pinned;
  let pkg = await dependsOfMemo(KERNEL_META, cache);
  let why = `apt-cache depends ${KERNEL_META} names no linux-image package`;
  if (!pkg) {
    const u = await tool('apt-get', ['update']);
    if (u.exitCode === 0) pkg = await dependsOf(KERNEL_META);
    else why = `apt-get update failed: ${lastLines(u.stderr)}`;
  }
  if (pkg) return pkg;
  const cached = (await readdir(path.join(cache, 'kernel')).catch(() => [] as string[]))
    .filter((d) => existsSync(path.join(cache, 'kernel', d, '.complete')))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (cached.length) return cached[cached.length - 1]!;
  throw new KrsiError('EIO', `fetch kernel: ${why}; the VM needs Debian's archive`, { details: { meta: KERNEL_META } });
}

function describe(pkg: string, dir: string, downloaded: boolean): Kernel {
  const version = pkg.replace(/^linux-image-/, '');
  return {
    pkg,
    version,
    dir,
    vmlinuz: path.join(dir, 'vmlinuz'),
    config: path.join(dir, 'config'),
    modules: Object.fromEntries(MODULES.map((m) => [m, path.join(dir, path.basename(m))])),
    downloaded,
  };
}

/**
 * Make sure the kernel is in <cache>/kernel/<pkg>/: vmlinuz, config and the
 * modules the guest needs, nothing else (the package's other 90 MB of
 * modules are never used). Does nothing when it is already there.
 *
 * Errors: EIO when apt-get download or dpkg -x fails (the archive is
 * unreachable, the package is gone); ENOENT when apt is missing or the
 * package lacks a file the guest needs.
 */
export async function fetchKernel(cache: string): Promise<Kernel> {
  const pkg = await resolveKernelPackage(cache);
  const dir = path.join(cache, 'kernel', pkg);
  if (complete(dir)) return describe(pkg, dir, false);
  return withLock(path.join(cache, 'kernel.lock'), async () => {
    if (complete(dir)) return describe(pkg, dir, false);
    await mkdir(path.join(cache, 'kernel'), { recursive: true });
    const work = await mkdtemp(path.join(cache, 'kernel', '.fetch-'));
    try {
      // As root apt drops to _apt for downloads, which cannot write here: download as root.
      const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
      const dl = await tool('apt-get', [...sandbox, 'download', pkg], work);
      if (dl.exitCode !== 0) {
        throw new KrsiError('EIO', `fetch kernel: apt-get download ${pkg} failed: ${lastLines(dl.stderr || dl.stdout)}; the VM needs Debian's archive`, {
          details: { pkg, stderr: dl.stderr },
        });
      }
      const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
      if (!deb) throw new KrsiError('EIO', `fetch kernel: apt-get download ${pkg} left no .deb in ${work}`);
      const x = await tool('dpkg', ['-x', deb, 'x'], work);
      if (x.exitCode !== 0) throw new KrsiError('EIO', `fetch kernel: dpkg -x ${deb} failed: ${lastLines(x.stderr)}`);
      const version = pkg.replace(/^linux-image-/, '');
      const out = path.join(work, 'out');
      await mkdir(out);
      const want: [string, string][] = [
        [`boot/vmlinuz-${version}`, 'vmlinuz'],
        [`boot/config-${version}`, 'config'],
        ...MODULES.map((m): [string, string] => [`lib/modules/${version}/${m}`, path.basename(m)]),
      ];
      for (const [from, to] of want) {
        const src = path.join(work, 'x', from);
        if (!existsSync(src)) throw new KrsiError('ENOENT', `fetch kernel: ${pkg} has no ${from}`);
        await copyFile(src, path.join(out, to));
      }
      await writeFile(path.join(out, '.complete'), `${pkg}\n${deb}\n`);
      await rm(dir, { recursive: true, force: true });
      await rename(out, dir);
      return describe(pkg, dir, true);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}
