// krsifs install: put the built project (dist/lib, the addon, the catalogue,
// production dependencies), the BPF objects and the systemd unit in place,
// make the policy directory, and enable the unit. --root DIR installs into a
// staging root (an image being built); --prefix moves /usr/local. The new
// tree is copied beside the old one and renamed over it, so a daemon
// restarted during an upgrade finds one whole version or the other (and the
// policies stay attached either way: they are pinned).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, realpath, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KrsiError } from './errors.js';
import type { Logger } from './log.js';
import { DEFAULT_POLICY_DIR } from './policies/parse.js';

const run = promisify(execFile);
export const UNIT = 'krsifs.service';
/** The checkout (or installed tree) this code runs from: dist/lib/install.js is two levels down. */
const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface InstallOptions {
  /** Default /usr/local: the project goes to PREFIX/lib/krsifs, the command to PREFIX/bin/krsifs. */
  prefix?: string;
  /** Default /: a staging root for an image; the unit is enabled there offline. */
  root?: string;
  enable: boolean;
  log: Logger;
}

const POLICY_README = `# krsifs policy directory: applied at boot, before the services it protects,
# and again on \`systemctl reload krsifs\` (SIGHUP). Files named *.conf, in
# lexical order; one declaration per line:
#   BEHAVIOUR PATH [KEY=VALUE ...]
# where "PATH [KEY=VALUE ...]" is what you would write to /mnt/krsi/BEHAVIOUR.
# A relative PATH resolves against this directory. For example (10-exec.conf):
#   process_execution /usr/local/lib/krsifs/deny_exec.o target=/opt/old/bin/tool
# Files and objects must be owned by root and writable by root only.
# \`krsifs status\` says whether the declared policy is in force.
`;

/** The unit as shipped, with ExecStart's paths for this prefix and this node. */
export function unitFor(text: string, prefix: string, node: string): string {
  return text
    .replace(/^(ExecStart=)\/usr\/bin\/node /m, `$1${node} `)
    .replaceAll('/usr/local/lib/krsifs/', `${prefix.replace(/\/$/, '')}/lib/krsifs/`);
}

async function need(rel: string, what: string): Promise<string> {
  const p = path.join(source, rel);
  if (!existsSync(p)) throw new KrsiError('ENOENT', `install: ${what} (${p}) is missing: run npm run build first`);
  return p;
}

/** The production dependencies' directories, relative to the project (npm ls, as the VM image does). */
async function prodDependencies(): Promise<string[]> {
  if (!existsSync(path.join(source, 'node_modules'))) return [];
  const r = await run('npm', ['ls', '--omit=dev', '--parseable', '--all'], { cwd: source }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  return r.stdout.split('\n').map((l) => l.trim())
    .filter((l) => l.startsWith(path.join(source, 'node_modules') + path.sep))
    .map((l) => path.relative(source, l));
}

export async function install(o: InstallOptions): Promise<number> {
  const { log } = o;
  const root = path.resolve(o.root ?? '/');
  const prefix = o.prefix ?? '/usr/local';
  if (!path.isAbsolute(prefix)) throw new KrsiError('EINVAL', `install: --prefix must be absolute, not ${prefix}`);
  const at = (p: string) => path.join(root, p);
  const dest = at(path.join(prefix, 'lib', 'krsifs'));
  const node = await realpath(process.execPath);

  const cli = await need('dist/lib/cli.js', 'the compiled TypeScript');
  const addon = await need('build/Release/krsifs.node', 'the addon');
  const objDir = await need('bpf/obj', 'the BPF objects');
  const objects = (await readdir(objDir)).filter((n) => n.endsWith('.o'));
  if (!objects.length) throw new KrsiError('ENOENT', `install: no BPF object in ${objDir}: run npm run build first`);

  const stage = `${dest}.new-${process.pid}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true, mode: 0o755 });
  try {
    await cp(path.dirname(cli), path.join(stage, 'dist/lib'), { recursive: true });
    await mkdir(path.join(stage, 'build/Release'), { recursive: true });
    await copyFile(addon, path.join(stage, 'build/Release/krsifs.node'));
    await mkdir(path.join(stage, 'lib'), { recursive: true });
    await copyFile(await need('lib/catalogue.json', 'the catalogue'), path.join(stage, 'lib/catalogue.json'));
    for (const f of ['package.json', 'README.md']) if (existsSync(path.join(source, f))) await copyFile(path.join(source, f), path.join(stage, f));
    for (const dep of await prodDependencies()) await cp(path.join(source, dep), path.join(stage, dep), { recursive: true });
    // the objects at the top, where policy files name them: PREFIX/lib/krsifs/deny_exec.o
    for (const n of objects) await copyFile(path.join(objDir, n), path.join(stage, n));
    await chmod(path.join(stage, 'dist/lib/cli.js'), 0o755);
    await run('chmod', ['-R', 'u+rwX,go+rX,go-w', stage]);
    const old = `${dest}.old-${process.pid}`;
    if (existsSync(dest)) await rename(dest, old);
    await rename(stage, dest);
    await rm(old, { recursive: true, force: true });
  } catch (e) {
    await rm(stage, { recursive: true, force: true });
    throw KrsiError.from(e, 'install');
  }
  log.info('installed', { dir: dest, objects: objects.length });

  const bin = at(path.join(prefix, 'bin', 'krsifs'));
  await mkdir(path.dirname(bin), { recursive: true });
  await unlink(bin).catch(() => {});
  await symlink(path.relative(path.dirname(path.join(prefix, 'bin', 'krsifs')), path.join(prefix, 'lib/krsifs/dist/lib/cli.js')), bin);

  const unitPath = at(`/etc/systemd/system/${UNIT}`);
  await mkdir(path.dirname(unitPath), { recursive: true });
  await writeFile(unitPath, unitFor(await readFile(await need(`systemd/${UNIT}`, 'the unit'), 'utf8'), prefix, node), { mode: 0o644 });
  const policies = at(DEFAULT_POLICY_DIR);
  await mkdir(policies, { recursive: true, mode: 0o755 });
  if (!existsSync(path.join(policies, 'README'))) await writeFile(path.join(policies, 'README'), POLICY_README, { mode: 0o644 });
  log.info('unit and policy directory', { unit: unitPath, policies, command: bin });

  if (!o.enable) return 0;
  const booted = root === '/' && existsSync('/run/systemd/system');
  try {
    if (booted) await run('systemctl', ['daemon-reload']);
    await run('systemctl', [...(root === '/' ? [] : [`--root=${root}`]), 'enable', UNIT]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new KrsiError('EIO', `install: systemctl enable ${UNIT} failed: ${(err.stderr || err.message).trim()}`);
  }
  log.info('enabled', { unit: UNIT, start: booted ? `systemctl start ${UNIT} (or reboot)` : 'at the next boot' });
  return 0;
}
