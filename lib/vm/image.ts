// The guest's root filesystem: one uncompressed newc initramfs holding
// busybox, node, bpftool, the shared libraries ldd names for them and the
// addon, the two kernel modules, and the project at /krsifs with its
// production dependencies. It is rebuilt only when an input changed.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { CpioWriter, type CpioEntry } from './cpio.js';
import type { Kernel } from './kernel.js';
import { withLock } from './paths.js';

/** Bump when the layout changes, so every cache rebuilds once. */
const FORMAT = 3;

export interface Image {
  path: string;
  size: number;
  files: number;
  rebuilt: boolean;
  hash: string;
  /** Inputs that were absent (not built yet): the image works without them, the project does not. */
  missing: string[];
}

export interface ImageOptions {
  root: string;
  cache: string;
  rebuild?: boolean;
}

/** What goes into the image, before it is written: entries by name, plus what the hash covers. */
class Manifest {
  readonly entries = new Map<string, CpioEntry>();
  readonly inputs: string[] = [];

  private dirs(name: string) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!this.entries.has(d)) this.entries.set(d, { type: 'dir', name: d });
    }
  }

  dir(name: string, mode = 0o755) {
    this.dirs(name);
    this.entries.set(name, { type: 'dir', name, mode });
    this.inputs.push(`d ${name} ${mode}`);
  }

  data(name: string, data: Buffer | string, mode = 0o644) {
    const buf = Buffer.from(data);
    this.dirs(name);
    this.entries.set(name, { type: 'data', name, mode, data: buf });
    this.inputs.push(`t ${name} ${mode} ${createHash('sha256').update(buf).digest('hex')}`);
  }

  symlink(name: string, target: string) {
    this.dirs(name);
    if (this.entries.has(name)) return; // a real file wins over a busybox applet
    this.entries.set(name, { type: 'symlink', name, target });
    this.inputs.push(`l ${name} ${target}`);
  }

  char(name: string, mode: number, major: number, minor: number) {
    this.dirs(name);
    this.entries.set(name, { type: 'char', name, mode, major, minor });
    this.inputs.push(`c ${name} ${mode} ${major} ${minor}`);
  }

  /** A host file (symlinks followed) at name. */
  async file(name: string, src: string) {
    const st = await stat(src);
    this.dirs(name);
    this.entries.set(name, { type: 'file', name, src, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) });
    // Small files by content, so that a tsc run rewriting dist/ unchanged does
    // not force a rebuild; big ones (node, libraries) by size and mtime.
    const id = st.size < 1 << 20 ? createHash('sha256').update(await readFile(src)).digest('hex') : `${st.size} ${st.mtimeMs}`;
    this.inputs.push(`f ${name} ${src} ${id} ${st.mode & 0o7777}`);
  }

  /** A host tree at name, symlinks kept as symlinks, except directories named in skip. */
  async tree(name: string, src: string, skip: (rel: string, isDir: boolean) => boolean = () => false, rel = '') {
    const here = path.join(src, rel);
    this.dir(rel ? `${name}/${rel}` : name);
    for (const d of await readdir(here, { withFileTypes: true })) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (skip(r, d.isDirectory())) continue;
      if (d.isDirectory()) await this.tree(name, src, skip, r);
      else if (d.isSymbolicLink()) this.symlink(`${name}/${r}`, await readlink(path.join(src, r)));
      else if (d.isFile()) await this.file(`${name}/${r}`, path.join(src, r));
    }
  }

  hash(kernel: Kernel): string {
    const h = createHash('sha256').update(`format ${FORMAT}\nkernel ${kernel.pkg}\n`);
    for (const line of [...this.inputs].sort()) h.update(line + '\n');
    return h.digest('hex');
  }
}

/** The libraries ldd names for these binaries, as absolute paths (ld.so included). */
export async function sharedLibraries(binaries: string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const bin of binaries) {
    const r = await execa('ldd', [bin], { reject: false, env: { LC_ALL: 'C' } });
    // ldd exits 1 with "not a dynamic executable" on static binaries: nothing to copy
    if (r.exitCode !== 0 && /not a dynamic executable/.test(r.stdout + r.stderr)) continue;
    if (r.exitCode !== 0) throw new KrsiError('EIO', `build image: ldd ${bin} failed: ${r.stderr.trim()}`);
    for (const line of r.stdout.split('\n')) {
      const missing = /^\s*(\S+) => not found/.exec(line);
      if (missing) throw new KrsiError('ENOENT', `build image: ${bin} needs ${missing[1]}, which ldd cannot find on this host`);
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  return [...libs].sort();
}

/** The production dependencies' directories, from npm, cached per package-lock.json. */
async function prodDependencies(root: string, cache: string): Promise<string[]> {
  const lock = await readFile(path.join(root, 'package-lock.json')).catch(() => Buffer.from(''));
  const pkg = await readFile(path.join(root, 'package.json'));
  const key = createHash('sha256').update(lock).update(pkg).digest('hex').slice(0, 16);
  const memo = path.join(cache, `prod-deps-${key}.json`);
  if (existsSync(memo)) return JSON.parse(await readFile(memo, 'utf8')) as string[];
  const r = await execa('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: root, reject: false });
  const dirs = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(path.join(root, 'node_modules') + path.sep))
    .map((l) => path.relative(root, l));
  if (!dirs.length && r.exitCode !== 0) throw new KrsiError('EIO', `build image: npm ls --omit=dev failed: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
  for (const d of dirs) {
    if (!existsSync(path.join(root, d))) throw new KrsiError('ENOENT', `build image: dependency ${d} is not installed; run npm ci`);
  }
  await mkdir(cache, { recursive: true });
  await writeFile(memo, JSON.stringify(dirs));
  return dirs;
}

async function which(name: string): Promise<string | undefined> {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(d || '.', name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Everything the guest needs, by name in the image. */
export async function manifest(kernel: Kernel, root: string, cache: string): Promise<{ m: Manifest; missing: string[] }> {
  const m = new Manifest();
  const missing: string[] = [];
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'run', 'root', 'etc', 'var/tmp', 'mnt/krsi', 'usr/local/bin']) m.dir(d);
  m.dir('tmp', 0o1777);
  m.char('dev/console', 0o600, 5, 1);
  m.char('dev/null', 0o666, 1, 3);
  m.data('init', await readFile(path.join(root, 'lib', 'vm', 'init.sh')), 0o755);
  m.data('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  m.data('etc/group', 'root:x:0:\nnogroup:x:65534:\n');
  m.data('etc/hostname', 'krsifs-vm\n');
  m.symlink('etc/mtab', '/proc/mounts');

  // Host binaries at their host paths, so ldd's paths hold in the guest too.
  const busybox = existsSync('/bin/busybox') ? '/bin/busybox' : await which('busybox');
  if (!busybox) throw new KrsiError('ENOENT', 'build image: busybox not found; apt-get install busybox-static');
  const node = process.execPath;
  const bpftool = await which('bpftool');
  if (!bpftool) throw new KrsiError('ENOENT', 'build image: bpftool not found; apt-get install bpftool');
  const addon = path.join(root, 'build', 'Release', 'krsifs.node');
  const fusermount3 = await which('fusermount3');
  const bins = [node, bpftool, busybox, ...(fusermount3 ? [fusermount3] : [])];
  for (const b of bins) await m.file(b.slice(1), b);
  if (node !== '/usr/bin/node') m.symlink('usr/bin/node', node);
  const applets = await execa(busybox, ['--list-full']);
  for (const a of applets.stdout.split('\n').map((s) => s.trim())) {
    if (a && a !== 'linuxrc' && !m.entries.has(a)) m.symlink(a, '/' + busybox.slice(1));
  }
  // npm run bench's C loader (scripts/bench.sh builds it; static when libbpf.a links, else its libraries come along)
  const benchLoader = path.join(root, 'build', 'bench', 'loader');
  const extra = [addon, benchLoader].filter((f) => existsSync(f));
  for (const lib of await sharedLibraries([...bins, ...extra])) await m.file(lib.slice(1), lib);

  for (const [rel, src] of Object.entries(kernel.modules)) await m.file(`lib/modules/${kernel.version}/${rel}`, src);
  // modules built for this kernel by the tests (test/helpers/test-modules.ts)
  const built = path.join(kernel.dir, 'extra');
  for (const f of (await readdir(built).catch(() => [] as string[])).filter((n) => n.endsWith('.ko')).sort()) {
    await m.file(`lib/modules/${kernel.version}/extra/${f}`, path.join(built, f));
  }

  // The project at /krsifs: what runs, not what builds it.
  await m.file('krsifs/package.json', path.join(root, 'package.json'));
  for (const [rel, what] of [['dist', 'dist/ (tsc)'], ['bpf/obj', 'bpf/obj/ (make -C bpf)']] as const) {
    if (existsSync(path.join(root, rel))) await m.tree(`krsifs/${rel}`, path.join(root, rel));
    else missing.push(what);
  }
  if (existsSync(addon)) await m.file('krsifs/build/Release/krsifs.node', addon);
  else missing.push('build/Release/krsifs.node (node-gyp)');
  if (existsSync(benchLoader)) await m.file('krsifs/build/bench/loader', benchLoader);
  // Data files next to the sources (a catalogue JSON, say) that dist/ may read by a relative path.
  if (existsSync(path.join(root, 'lib'))) {
    await m.tree('krsifs/lib', path.join(root, 'lib'), (rel, isDir) => !isDir && (rel.endsWith('.ts') || rel === 'vm/init.sh'));
  }
  for (const dep of await prodDependencies(root, cache)) {
    // nested node_modules are listed by npm on their own when they are production dependencies
    await m.tree(`krsifs/${dep}`, path.join(root, dep), (rel, isDir) => isDir && rel === 'node_modules');
  }
  return { m, missing };
}

/**
 * Build <cache>/image/<kernel package>/initrd.cpio unless the one there was
 * built from the same inputs (names, sizes and mtimes of host files, contents
 * of generated ones, the init script, the kernel package). One image per
 * kernel, so that a run alternating kernels does not rebuild each time.
 * Concurrent callers wait for one build.
 *
 * Errors: ENOENT when busybox, bpftool, a library or a dependency is missing; EIO when ldd or npm fails.
 */
export async function buildImage(kernel: Kernel, opts: ImageOptions): Promise<Image> {
  const out = path.join(opts.cache, 'image', kernel.pkg, 'initrd.cpio');
  const hashFile = out + '.inputs';
  return withLock(path.join(opts.cache, 'image.lock'), async () => {
    await mkdir(path.dirname(out), { recursive: true });
    // the single image of before there was one per kernel
    await rm(path.join(opts.cache, 'initrd.cpio'), { force: true });
    const { m, missing } = await manifest(kernel, opts.root, opts.cache);
    const hash = m.hash(kernel);
    const entries = [...m.entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (!opts.rebuild && existsSync(out) && (await readFile(hashFile, 'utf8').catch(() => '')) === hash) {
      return { path: out, size: (await stat(out)).size, files: entries.length, rebuilt: false, hash, missing };
    }
    const tmp = `${out}.${process.pid}.tmp`;
    try {
      const w = await CpioWriter.create(tmp);
      for (const e of entries) await w.add(e);
      const size = await w.finish();
      await rename(tmp, out);
      await writeFile(hashFile, hash);
      return { path: out, size, files: entries.length, rebuilt: true, hash, missing };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  });
}
