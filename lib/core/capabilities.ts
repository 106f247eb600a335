// Capabilities of the process that made a FUSE request, from its
// /proc/PID/status (effective set): the kernel does not check CAP_MAC_ADMIN
// for us on a FUSE file, so the daemon must.
import { readFile } from 'node:fs/promises';

export const CAP_MAC_ADMIN = 33;

/** Does process `pid` hold capability `cap` in its effective set? false when it is gone. */
export async function hasCapability(pid: number, cap: number): Promise<boolean> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false;
  }
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) return false;
  return ((BigInt('0x' + m[1]) >> BigInt(cap)) & 1n) === 1n;
}

export async function commOf(pid: number): Promise<string> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return '?';
  }
}
