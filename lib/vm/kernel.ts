// The guest kernel: one of Debian's cloud kernels (CONFIG_BPF_LSM=y, BTF,
// FUSE as a module), fetched with apt-get and kept in the cache. Versions are
// resolved at run time because Debian moves the ABI number with every point
// release and removes old packages from the archive.
//
// Which kernel: the distribution's stock one by default (what the host's apt
// says linux-image-cloud-amd64 depends on), or a series (`6.1`, `6.12`: the
// newest cloud kernel of it), or a full package name. A series the host's apt
// does not carry comes from a private apt setup under the cache (its own
// sources list and lists directory), so the host's apt configuration is
// never edited.
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { withLock } from './paths.js';

/** The metapackage that always depends on the current cloud kernel. */
export const KERNEL_META = 'linux-image-cloud-amd64';

/** An apt source krsifs sets up for itself: deb lines, and a name for its state directory. */
export interface AptSource {
  name: string;
  lines: string[];
}

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const deb = (suite: string, archive = 'debian') =>
  `deb [arch=amd64${existsSync(KEYRING) ? ` signed-by=${KEYRING}` : ''}] http://deb.debian.org/${archive} ${suite} main`;

export const BOOKWORM_BACKPORTS: AptSource = { name: 'bookworm-backports', lines: [deb('bookworm-backports')] };
const BOOKWORM: AptSource = { name: 'bookworm', lines: [deb('bookworm-security', 'debian-security'), deb('bookworm-updates'), deb('bookworm')] };

export interface Series {
  /** What `--kernel` takes: 6.1, 6.12. */
  name: string;
  /** The cloud kernel packages of the series (not -dbg, not -unsigned). */
  pattern: RegExp;
  /** Where it comes from. `host` first means the host's apt when it knows the series. */
  sources: ('host' | AptSource)[];
  about: string;
}

export const SERIES: readonly Series[] = [
  {
    name: '6.1',
    pattern: /^linux-image-6\.1\.\d+-\d+-cloud-amd64$/,
    // Debian 12's own kernel: the host's apt has it on the machines this runs on;
    // the private bookworm lists are for hosts of another release.
    sources: ['host', BOOKWORM],
    about: "Debian 12's kernel (bookworm)",
  },
  {
    name: '6.12',
    pattern: /^linux-image-6\.12\.\d+\+deb12(\.\d+)?-cloud-amd64$/,
    sources: [BOOKWORM_BACKPORTS],
    about: 'bookworm-backports',
  },
];

/** A full cloud kernel package name, as `--kernel` takes it. */
const PACKAGE = /^linux-image-\d[A-Za-z0-9.+~-]*-cloud-amd64$/;

/** What `--kernel` asked for. */
export type KernelSpec = { kind: 'stock' } | { kind: 'series'; series: Series } | { kind: 'package'; pkg: string };

export function seriesNames(): string {
  return SERIES.map((s) => s.name).join(', ');
}

/**
 * `--kernel` (or $KRSIFS_VM_KERNEL): nothing or `stock` is the distribution's
 * stock kernel; a series name; a full package name.
 * Errors: EINVAL naming the series that exist.
 */
export function parseKernelSpec(spec: string | undefined): KernelSpec {
  const s = (spec ?? '').trim();
  if (s === '' || s === 'stock') return { kind: 'stock' };
  const series = SERIES.find((x) => x.name === s);
  if (series) return { kind: 'series', series };
  if (PACKAGE.test(s)) return { kind: 'package', pkg: s };
  throw new KrsiError(
    'EINVAL',
    `vm: unknown kernel '${s}': the series are ${SERIES.map((x) => `${x.name} (${x.about})`).join(', ')}; ` +
      `or a full package name, linux-image-VERSION-cloud-amd64; or stock (the default: what ${KERNEL_META} depends on)`,
    { details: { kernel: s, series: SERIES.map((x) => x.name) } },
  );
}

export interface Kernel {
  /** The package, e.g. linux-image-6.1.0-56-cloud-amd64. */
  pkg: string;
  /** `uname -r` in the guest, e.g. 6.1.0-56-cloud-amd64. */
  version: string;
  dir: string;
  vmlinuz: string;
  config: string;
  /** Modules the guest init insmods, by their path under /lib/modules/<version>/ (uncompressed). */
  modules: Record<string, string>;
  /** Modules of MODULES the kernel has built in: nothing to load. */
  builtin: string[];
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

/** MODULES the kernel has built in (6.12's fuse), from the list of a complete cache dir. */
function builtins(dir: string): Set<string> {
  try {
    return new Set(readFileSync(path.join(dir, 'builtin'), 'utf8').split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

/** A complete cache dir that has every module of MODULES (a cache from before a module was added does not). */
function complete(dir: string): boolean {
  if (!existsSync(path.join(dir, '.complete'))) return false;
  const builtin = builtins(dir);
  return MODULES.every((m) => builtin.has(m) || existsSync(path.join(dir, path.basename(m))));
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

/** apt-get / apt-cache options that confine apt to one private source under the cache. */
export function aptOptions(cache: string, src: AptSource | 'host'): string[] {
  // As root apt drops to _apt for downloads, which cannot write into the cache: stay root.
  const root = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  if (src === 'host') return root;
  const dir = path.join(cache, 'apt', src.name);
  return [
    ...root,
    '-o', `Dir::Etc::SourceList=${path.join(dir, 'sources.list')}`,
    '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`,
    // no binary cache in /var/cache/apt built from our lists
    '-o', 'Dir::Cache::pkgcache=',
    '-o', 'Dir::Cache::srcpkgcache=',
    '-o', 'Acquire::Languages=none',
  ];
}

/** Lists older than this are refreshed (a failed refresh keeps them). */
const LISTS_MAX_AGE_MS = 12 * 3600_000;

/**
 * The private source's lists, updated when missing, older than
 * LISTS_MAX_AGE_MS or when force is set. Returns why they could not be
 * updated (stale lists are still used), or null.
 */
async function refreshPrivate(cache: string, src: AptSource, force = false): Promise<string | null> {
  const dir = path.join(cache, 'apt', src.name);
  const stamp = path.join(dir, 'updated');
  const sources = src.lines.join('\n') + '\n';
  const fresh =
    !force &&
    (await readFile(path.join(dir, 'sources.list'), 'utf8').catch(() => '')) === sources &&
    Date.now() - (await stat(stamp).then((s) => s.mtimeMs, () => 0)) < LISTS_MAX_AGE_MS;
  if (fresh) return null;
  return withLock(path.join(cache, 'apt', `${src.name}.lock`), async () => {
    await mkdir(path.join(dir, 'lists', 'partial'), { recursive: true });
    await writeFile(path.join(dir, 'sources.list'), sources);
    const u = await tool('apt-get', [...aptOptions(cache, src), '-q', 'update']);
    // apt-get update exits 0 with "W: Failed to fetch" when a source is unreachable
    const failed = u.exitCode !== 0 || /^(E|W): (Failed to fetch|Some index files failed)/m.test(u.stderr);
    if (failed) return `apt-get update (${src.name}) failed: ${lastLines(u.stderr || u.stdout)}`;
    await writeFile(stamp, new Date().toISOString() + '\n');
    return null;
  });
}

/** Every package name apt knows under src that matches re. */
async function packageNames(cache: string, src: AptSource | 'host', re: RegExp): Promise<string[]> {
  const r = await tool('apt-cache', [...aptOptions(cache, src), 'pkgnames', 'linux-image-']);
  if (r.exitCode !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => re.test(l));
}

/** Is pkg downloadable under src (a real package with a version, not only a name apt has heard of)? */
async function knows(cache: string, src: AptSource | 'host', pkg: string): Promise<boolean> {
  const r = await tool('apt-cache', [...aptOptions(cache, src), 'show', '--no-all-versions', pkg]);
  return r.exitCode === 0 && /^Filename: /m.test(r.stdout);
}

/** The numbers of a kernel package's version, for ordering: 6.12.90+deb12.1 → [6,12,90,12,1]. */
function versionKey(pkg: string): number[] {
  return (pkg.replace(/^linux-image-/, '').replace(/-cloud-amd64$/, '').match(/\d+/g) ?? []).map(Number);
}

export function newestFirst(pkgs: string[]): string[] {
  return [...pkgs].sort((a, b) => {
    const x = versionKey(a), y = versionKey(b);
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const d = (y[i] ?? -1) - (x[i] ?? -1);
      if (d) return d;
    }
    return 0;
  });
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

/** The kernels already complete in the cache, newest first, that match re. */
async function cachedKernels(cache: string, re: RegExp): Promise<string[]> {
  const dirs = await readdir(path.join(cache, 'kernel')).catch(() => [] as string[]);
  return newestFirst(dirs.filter((d) => re.test(d) && complete(path.join(cache, 'kernel', d))));
}

/** A resolved kernel package and the apt source it downloads from. */
export interface Resolved {
  pkg: string;
  source: AptSource | 'host';
  /** A note worth printing (stale lists, the cache used instead of apt). */
  note?: string;
}

async function resolveStock(cache: string): Promise<Resolved> {
  let pkg = await dependsOfMemo(KERNEL_META, cache);
  let why = `apt-cache depends ${KERNEL_META} names no linux-image package`;
  if (!pkg) {
    const u = await tool('apt-get', ['update']);
    if (u.exitCode === 0) pkg = await dependsOf(KERNEL_META);
    else why = `apt-get update failed: ${lastLines(u.stderr)}`;
  }
  if (pkg) return { pkg, source: 'host' };
  const cached = await cachedKernels(cache, PACKAGE);
  if (cached.length) return { pkg: cached[0]!, source: 'host', note: `${why}; using the newest cached kernel` };
  throw new KrsiError('EIO', `fetch kernel: ${why}; the VM needs Debian's archive`, { details: { meta: KERNEL_META } });
}

/**
 * The newest package of the series that the host's apt knows, kept until
 * apt's lists change (apt-cache reads them all: most of a second here).
 */
async function newestOnHostMemo(cache: string, series: Series): Promise<string | undefined> {
  const lists = await stat('/var/lib/apt/lists').then((s) => String(s.mtimeMs)).catch(() => '');
  const memo = path.join(cache, 'kernel', `series-${series.name}.json`);
  const old = JSON.parse(await readFile(memo, 'utf8').catch(() => '{}')) as { lists?: string; pkg?: string };
  if (lists && old.lists === lists && old.pkg) return old.pkg;
  const pkg = newestFirst(await packageNames(cache, 'host', series.pattern))[0];
  if (pkg && lists) {
    await mkdir(path.dirname(memo), { recursive: true });
    await writeFile(memo, JSON.stringify({ lists, pkg }));
  }
  return pkg;
}

async function resolveSeries(cache: string, series: Series): Promise<Resolved> {
  const whys: string[] = [];
  for (const src of series.sources) {
    const stale = src === 'host' ? null : await refreshPrivate(cache, src);
    if (stale) whys.push(stale);
    const pkg = src === 'host' ? await newestOnHostMemo(cache, series) : newestFirst(await packageNames(cache, src, series.pattern))[0];
    if (pkg) return { pkg, source: src, ...(stale ? { note: `${stale}; using the lists from before` } : {}) };
    if (!stale) whys.push(`${src === 'host' ? "the host's apt" : `apt (${src.name})`} knows no package matching ${series.pattern.source}`);
  }
  const cached = await cachedKernels(cache, series.pattern);
  const why = whys.join('; ');
  if (cached.length) return { pkg: cached[0]!, source: series.sources[0]!, note: `${why}; using the newest cached ${series.name} kernel` };
  throw new KrsiError('EIO', `fetch kernel: no ${series.name} kernel: ${why}; the VM needs Debian's archive`, { details: { series: series.name } });
}

/** A full package name: from the host's apt if it knows it, else from the series' private sources. */
async function resolvePackage(cache: string, pkg: string): Promise<Resolved> {
  if (complete(path.join(cache, 'kernel', pkg))) return { pkg, source: 'host' };
  if (await knows(cache, 'host', pkg)) return { pkg, source: 'host' };
  const privates = [...new Set(SERIES.flatMap((s) => s.sources).filter((s): s is AptSource => s !== 'host'))];
  // the series whose pattern the name matches first: most names match one
  privates.sort((a, b) => Number(!SERIES.some((s) => s.sources.includes(a) && s.pattern.test(pkg))) - Number(!SERIES.some((s) => s.sources.includes(b) && s.pattern.test(pkg))));
  for (const src of privates) {
    await refreshPrivate(cache, src);
    if (await knows(cache, src, pkg)) return { pkg, source: src };
  }
  // let apt-get download say what is wrong
  return { pkg, source: 'host' };
}

/**
 * The kernel package for spec. $KRSIFS_VM_KERNEL_PKG, when set, wins (the
 * tests use it to name a package that does not exist).
 */
export async function resolveKernel(cache: string, spec: KernelSpec): Promise<Resolved> {
  const pinned = process.env.KRSIFS_VM_KERNEL_PKG;
  if (pinned) return { pkg: pinned, source: 'host' };
  if (spec.kind === 'stock') return resolveStock(cache);
  if (spec.kind === 'series') return resolveSeries(cache, spec.series);
  return resolvePackage(cache, spec.pkg);
}

function describe(pkg: string, dir: string, downloaded: boolean): Kernel {
  const version = pkg.replace(/^linux-image-/, '');
  const builtin = builtins(dir);
  return {
    pkg,
    version,
    dir,
    vmlinuz: path.join(dir, 'vmlinuz'),
    config: path.join(dir, 'config'),
    modules: Object.fromEntries(MODULES.filter((m) => !builtin.has(m)).map((m) => [m, path.join(dir, path.basename(m))])),
    builtin: MODULES.filter((m) => builtin.has(m)),
    downloaded,
  };
}

/**
 * Make sure the kernel is in <cache>/kernel/<pkg>/: vmlinuz, config and the
 * modules the guest needs, nothing else (the package's other 90 MB of
 * modules are never used). Does nothing when it is already there.
 *
 * Errors: EINVAL for an unknown series; EIO when apt-get download or dpkg -x
 * fails (the archive is unreachable, the package is gone); ENOENT when apt is
 * missing or the package lacks a file the guest needs.
 */
export async function fetchKernel(cache: string, spec: KernelSpec = { kind: 'stock' }, onNote?: (note: string) => void): Promise<Kernel> {
  const { pkg, source, note } = await resolveKernel(cache, spec);
  if (note) onNote?.(note);
  const dir = path.join(cache, 'kernel', pkg);
  if (complete(dir)) return describe(pkg, dir, false);
  return withLock(path.join(cache, 'kernel.lock'), async () => {
    if (complete(dir)) return describe(pkg, dir, false);
    await mkdir(path.join(cache, 'kernel'), { recursive: true });
    const work = await mkdtemp(path.join(cache, 'kernel', '.fetch-'));
    try {
      const dl = await tool('apt-get', [...aptOptions(cache, source), 'download', pkg], work);
      if (dl.exitCode !== 0) {
        throw new KrsiError('EIO', `fetch kernel: apt-get download ${pkg} failed: ${lastLines(dl.stderr || dl.stdout)}; the VM needs Debian's archive`, {
          details: { pkg, stderr: dl.stderr },
        });
      }
      const debFile = (await readdir(work)).find((f) => f.endsWith('.deb'));
      if (!debFile) throw new KrsiError('EIO', `fetch kernel: apt-get download ${pkg} left no .deb in ${work}`);
      const x = await tool('dpkg', ['-x', debFile, 'x'], work);
      if (x.exitCode !== 0) throw new KrsiError('EIO', `fetch kernel: dpkg -x ${debFile} failed: ${lastLines(x.stderr)}`);
      const version = pkg.replace(/^linux-image-/, '');
      const out = path.join(work, 'out');
      await mkdir(out);
      for (const [from, to] of [[`boot/vmlinuz-${version}`, 'vmlinuz'], [`boot/config-${version}`, 'config']] as const) {
        const src = path.join(work, 'x', from);
        if (!existsSync(src)) throw new KrsiError('ENOENT', `fetch kernel: ${pkg} has no ${from}`);
        await copyFile(src, path.join(out, to));
      }
      const modDir = path.join(work, 'x', 'lib', 'modules', version);
      const builtin = new Set((await readFile(path.join(modDir, 'modules.builtin'), 'utf8').catch(() => '')).split('\n').filter(Boolean));
      for (const m of MODULES) {
        const src = path.join(modDir, m);
        if (builtin.has(m)) continue;
        if (existsSync(src)) await copyFile(src, path.join(out, path.basename(m)));
        else if (existsSync(src + '.xz')) {
          // 6.12 ships modules xz-compressed; busybox insmod wants them plain
          const xz = await tool('xz', ['-d', src + '.xz'], work);
          if (xz.exitCode !== 0) throw new KrsiError('EIO', `fetch kernel: xz -d ${m}.xz failed: ${lastLines(xz.stderr)}`);
          await copyFile(src, path.join(out, path.basename(m)));
        } else throw new KrsiError('ENOENT', `fetch kernel: ${pkg} has no lib/modules/${version}/${m}, and does not build it in`);
      }
      await writeFile(path.join(out, 'builtin'), MODULES.filter((m) => builtin.has(m)).join('\n') + '\n');
      await writeFile(path.join(out, '.complete'), `${pkg}\n${debFile}\n`);
      await rm(dir, { recursive: true, force: true });
      await rename(out, dir);
      return describe(pkg, dir, true);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}
