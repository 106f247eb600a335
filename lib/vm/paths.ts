// Where the VM tool finds the checkout and keeps its cache, and a lock so
// that two runs (a test file and a shell, say) never build the same image
// at once.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest directory above this module whose package.json is krsifs's. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'krsifs') return dir;
      } catch {
        // not ours: keep walking up
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('vm: cannot find the krsifs checkout above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** .cache/vm in the checkout (ignored by git), or $KRSIFS_VM_CACHE. */
export function cacheDir(): string {
  return process.env.KRSIFS_VM_CACHE ?? path.join(projectRoot(), '.cache', 'vm');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Run fn holding a lock directory (mkdir is atomic). A lock whose owner has
 * died is taken over, so a killed run never wedges the next one.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, waitMs = 15 * 60_000): Promise<T> {
  await mkdir(path.dirname(dir), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(path.join(dir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(await readFile(path.join(dir, 'pid'), 'utf8').catch(() => ''));
      if (pid && !alive(pid)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`vm: lock ${dir} held by pid ${pid || '?'} for too long`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
