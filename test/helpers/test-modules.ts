// Kernel modules the VM suites load (test/vm/fixtures/modules/*.c), built on
// the host for one guest kernel against that kernel's own headers: Debian's
// linux-headers-VERSION, its -common package and linux-kbuild-SERIES, fetched
// with apt-get download from the source the kernel came from and extracted
// under the cache (never installed). The .ko files go to <kernel dir>/extra/,
// which the image puts at /lib/modules/VERSION/extra/ in the guest. Each step
// is skipped when its output is there: headers per kernel version, modules
// per version and sources.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../../lib/errors.js';
import { aptOptions, fetchKernel, parseKernelSpec, resolveKernel } from '../../lib/vm/kernel.js';
import { cacheDir, projectRoot, withLock } from '../../lib/vm/paths.js';

/** Where the guest finds them: /lib/modules/$(uname -r)/extra/NAME.ko. */
export const GUEST_MODULE_DIR = 'extra';

async function run(cmd: string, args: string[], cwd: string, what: string) {
  const r = await execa(cmd, args, { cwd, reject: false, env: { LC_ALL: 'C' }, stdin: 'ignore', all: true });
  if (r.exitCode !== 0) {
    throw new KrsiError('EIO', `test modules: ${what} failed (${cmd} ${args.join(' ')}): ${(r.all ?? '').trim().split('\n').slice(-8).join(' / ')}`);
  }
  return r.stdout;
}

/** Absolute symlinks of the packages (into /usr/src, /usr/lib) made relative to where they were extracted. */
async function relink(root: string, dir = root): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) {
      const to = await readlink(p);
      if (!to.startsWith('/')) continue;
      await rm(p);
      await symlink(path.relative(dir, path.join(root, to)) || '.', p);
    } else if (e.isDirectory()) {
      await relink(root, p);
    }
  }
}

/** <cache>/headers/VERSION: the extracted packages, with the build directory usable from there. */
async function headers(cache: string, version: string, source: Parameters<typeof aptOptions>[1]): Promise<string> {
  const dir = path.join(cache, 'headers', version);
  const build = path.join(dir, 'usr', 'src', `linux-headers-${version}`);
  if (existsSync(path.join(dir, '.complete'))) return build;
  return withLock(path.join(cache, 'headers.lock'), async () => {
    if (existsSync(path.join(dir, '.complete'))) return build;
    await mkdir(path.join(cache, 'headers'), { recursive: true });
    const work = await mkdtemp(path.join(cache, 'headers', '.fetch-'));
    try {
      const apt = aptOptions(cache, source);
      const main = `linux-headers-${version}`;
      await run('apt-get', [...apt, 'download', main], work, `apt-get download ${main}`);
      const mainDeb = (await readdir(work)).find((f) => f.startsWith(`${main}_`) && f.endsWith('.deb'))!;
      // its -common and the kbuild tools, by the exact names its Depends gives
      const depends = (await run('dpkg-deb', ['-f', mainDeb, 'Depends'], work, 'dpkg-deb -f')).split(',').map((d) => d.trim().split(/\s/)[0]!);
      const more = depends.filter((d) => /^linux-headers-.*-common$/.test(d) || d.startsWith('linux-kbuild-'));
      if (more.length !== 2) throw new KrsiError('EIO', `test modules: ${main} depends on ${depends.join(', ')}: expected one -common and one linux-kbuild package`);
      await run('apt-get', [...apt, 'download', ...more], work, `apt-get download ${more.join(' ')}`);
      const x = path.join(work, 'x');
      for (const deb of (await readdir(work)).filter((f) => f.endsWith('.deb'))) await run('dpkg-deb', ['-x', deb, x], work, `dpkg-deb -x ${deb}`);
      await relink(x);
      await rm(dir, { recursive: true, force: true });
      await rename(x, dir);
      // the arch Makefile includes the -common one by its installed path
      const mk = path.join(build, 'Makefile');
      await writeFile(mk, (await readFile(mk, 'utf8')).replace(/^include \/usr\/src\//m, `include ${path.join(dir, 'usr', 'src')}/`));
      await writeFile(path.join(dir, '.complete'), [mainDeb, ...more].join('\n') + '\n');
      return build;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/**
 * Build test/vm/fixtures/modules/ for kernel `spec` (6.1, 6.12, …) unless
 * built already from the same sources. Returns the .ko files' names.
 */
export async function buildTestModules(spec: string): Promise<string[]> {
  const cache = cacheDir();
  const kspec = parseKernelSpec(spec);
  const { source } = await resolveKernel(cache, kspec);
  const kernel = await fetchKernel(cache, kspec);
  const src = path.join(projectRoot(), 'test', 'vm', 'fixtures', 'modules');
  const files = (await readdir(src)).sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update('\0').update(await readFile(path.join(src, f)));
  const digest = hash.digest('hex');
  const out = path.join(kernel.dir, GUEST_MODULE_DIR);
  const names = files.filter((f) => f.endsWith('.c')).map((f) => f.replace(/\.c$/, '.ko'));
  const stamp = path.join(out, '.sources');
  if ((await readFile(stamp, 'utf8').catch(() => '')) === digest && names.every((n) => existsSync(path.join(out, n)))) return names;
  const build = await headers(cache, kernel.version, source);
  const work = await mkdtemp(path.join(cache, 'headers', '.build-'));
  try {
    for (const f of files) if ((await lstat(path.join(src, f))).isFile()) await copyFile(path.join(src, f), path.join(work, f));
    // no BTF for them (it wants pahole, and nothing here reads a test module's types)
    await run('make', ['-C', build, `M=${work}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', 'modules'], work, `make modules for ${kernel.version}`);
    await mkdir(out, { recursive: true });
    for (const n of names) await copyFile(path.join(work, n), path.join(out, n));
    await writeFile(stamp, digest);
    return names;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
