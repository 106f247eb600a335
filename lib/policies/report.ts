// The daemon's account of its last reconcile, for `krsifs status`: which
// declarations failed and why (the kernel's refusal is only known to the one
// that tried). One file per pin root (what a daemon owns), written whole:
// a reader sees the old account or the new one, never half of one.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LOCK_DIR } from '../daemon-lock.js';
import type { ReconcileResult } from './reconcile.js';

export interface Report extends ReconcileResult {
  pid: number;
  /** 1 for the reconcile at start-up, +1 for each SIGHUP. */
  generation: number;
  at: string;
  pinRoot: string;
  mountpoint: string;
  strict: boolean;
  prune: boolean;
}

export function reportPath(pinRoot: string): string {
  const key = createHash('sha256').update(path.resolve(pinRoot)).digest('hex').slice(0, 32);
  return path.join(LOCK_DIR, `policies-${key}.json`);
}

export async function writeReport(r: Report): Promise<void> {
  const file = reportPath(r.pinRoot);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  // 0600: it names paths and programs, like error_log
  await writeFile(tmp, JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** The last report for the pin root; null when no daemon wrote one (since boot: /run is a tmpfs). */
export async function readReport(pinRoot: string): Promise<Report | null> {
  try {
    return JSON.parse(await readFile(reportPath(pinRoot), 'utf8')) as Report;
  } catch {
    return null;
  }
}
