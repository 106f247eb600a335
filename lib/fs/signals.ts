// Is a process being killed? FUSE tells us only that a reader got *a*
// signal (FUSE_INTERRUPT). A fatal one (SIGKILL, or any signal whose default
// action kills and that the process does not handle) shows as SIGKILL
// pending in /proc/PID/status: the kernel marks every thread so
// (complete_signal). Only then must a waiting read end: the dying process
// waits, uninterruptibly, for our answer. Other signals (Ctrl-Z, a handled
// SIGUSR1) leave the read waiting, and the stream goes on.
import { readFile } from 'node:fs/promises';

const SIGKILL_BIT = 1n << 8n; // signal 9

export async function fatalSignalPending(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    for (const key of ['SigPnd', 'ShdPnd']) {
      const m = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(status);
      if (m && (BigInt('0x' + m[1]) & SIGKILL_BIT) !== 0n) return true;
    }
    return false;
  } catch {
    return true; // gone already: nobody is waiting for the answer
  }
}

/**
 * A signal that aborts when `interrupted` aborts and process `pid` is being
 * killed. The check is made when the interrupt comes, and again every
 * `recheckMs` after it while `interrupted` stays aborted (a fatal signal may
 * land just after a harmless one).
 */
export function abortWhenKilled(pid: number, interrupted: AbortSignal | undefined): AbortSignal | undefined {
  if (!interrupted) return undefined;
  const out = new AbortController();
  const check = async () => {
    for (let i = 0; i < 50 && !out.signal.aborted; i++) {
      if (await fatalSignalPending(pid)) {
        out.abort();
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  if (interrupted.aborted) void check();
  else interrupted.addEventListener('abort', () => void check(), { once: true });
  return out.signal;
}
