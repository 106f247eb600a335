// One daemon per mountpoint and per pin root: a second `krsifs mount` would
// stack a mount over the first, or adopt and rename the first one's pins
// under it. Both are flock(2)s the kernel drops when the holder dies.
import { createHash } from 'node:crypto';
import { mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from './errors.js';
import { native } from './addon.js';

export const LOCK_DIR = '/run/krsifs';

function take(lockPath: string, what: string): void {
  try {
    native.lock(lockPath);
  } catch (e) {
    const err = KrsiError.from(e);
    if (err.code !== 'EBUSY') throw err;
    throw new KrsiError('EBUSY', `another krsifs daemon already serves ${what} (it holds ${lockPath}); ` +
      `stop it first (its pid: fuser -v ${lockPath})`, { details: { lock: lockPath } });
  }
}

/** The mountpoint's lock file: by its canonical path (the mountpoint itself may be a dead mount). */
export async function lockMountpoint(mountpoint: string): Promise<void> {
  const canonical = path.join(await realpath(path.dirname(mountpoint)), path.basename(mountpoint));
  await mkdir(LOCK_DIR, { recursive: true, mode: 0o700 });
  const key = createHash('sha256').update(canonical).digest('hex').slice(0, 32);
  take(path.join(LOCK_DIR, `mount-${key}.lock`), `the mountpoint ${canonical}`);
}

/** The pin root directory itself is the lock: any path to it names the same inode. */
export function lockPinRoot(root: string): void {
  take(root, `the pin root ${root}`);
}
