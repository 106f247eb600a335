// Is a process being killed? FUSE tells us only that a caller got *a*
// signal (FUSE_INTERRUPT), and only once per request. A fatal one (SIGKILL,
// or any signal whose default action kills and that the process does not
// handle) shows as SIGKILL pending in /proc/PID/status: the kernel marks
// every thread so (complete_signal). Only then must a waiting request end:
// the dying process waits, uninterruptibly, for our answer. Other signals
// (Ctrl-Z, a handled SIGINT) leave the request waiting, and the stream goes on.
//
// A harmless signal may come first and the fatal one any time later: the
// kernel then sends no second interrupt (the request sits in its killable
// wait, then in an uninterruptible one, and never tells the daemon again).
// So once a request was interrupted its caller is watched for as long as the
// request is pending, and no longer: every RECHECK_MS one shared timer reads
// /proc/PID/status once per distinct caller still waiting; it runs only while
// some interrupted request is unanswered (none in normal operation).
//
// Why polling /proc: nothing else tells another process of a pending signal.
// A pidfd reports only exit (poll) and the dying process cannot exit before
// we answer; signalfd sees only our own signals; the proc connector reports
// fork/exec/exit, not signals; ptrace would stop the caller; a BPF tracepoint
// on signal_generate would work but puts a program on every signal of the
// machine for a rare case. A read of /proc/PID/status costs tens of
// microseconds; ten a second per Ctrl-Z'd reader is nothing.
import { answeredSignal } from '../fuse/requests.js';
import { fatalSignalPending } from '../kernel/proc.js';

/** How soon a kill that follows a harmless signal is noticed. */
export const RECHECK_MS = 100;

interface Watch {
  pid: number;
  killed: AbortController;
}

/** Interrupted requests still waiting for an answer, by caller. */
const watches = new Set<Watch>();
let timer: NodeJS.Timeout | null = null;
let checking = false;
let checkAgain = false;

/** Interrupted requests whose caller is being watched now (0 unless some wait). */
export function watchedRequests(): number {
  return watches.size;
}

async function checkAll(): Promise<void> {
  if (checking) {
    checkAgain = true; // a new watch came during a pass: look at it right after
    return;
  }
  checking = true;
  try {
    do {
      checkAgain = false;
      const byPid = new Map<number, Watch[]>();
      for (const w of watches) byPid.set(w.pid, [...(byPid.get(w.pid) ?? []), w]);
      await Promise.all(
        [...byPid].map(async ([pid, ws]) => {
          if (!(await fatalSignalPending(pid))) return;
          for (const w of ws) {
            watches.delete(w);
            w.killed.abort();
          }
        }),
      );
    } while (checkAgain && watches.size > 0);
  } finally {
    checking = false;
    if (watches.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  }
}

function watch(w: Watch, answered: AbortSignal | undefined): void {
  if (answered?.aborted || w.killed.signal.aborted) return;
  watches.add(w);
  answered?.addEventListener(
    'abort',
    () => {
      watches.delete(w);
      if (watches.size === 0 && timer && !checking) {
        clearInterval(timer);
        timer = null;
      }
    },
    { once: true },
  );
  if (!timer) {
    timer = setInterval(() => void checkAll(), RECHECK_MS);
    timer.unref(); // never what keeps the daemon alive
  }
  void checkAll(); // at once: the interrupt may be the kill itself
}

/**
 * A signal that aborts once `interrupted` has aborted and process `pid` is
 * being killed (or is gone). The check is made when the interrupt comes
 * (also when it came before this call), then every RECHECK_MS until the
 * request is answered: `answered` aborts then, and defaults to what the FUSE
 * layer gives for its interrupt signals (lib/fuse answeredSignal). Without
 * one, the watch lasts until the process is killed or gone.
 */
export function abortWhenKilled(
  pid: number,
  interrupted: AbortSignal | undefined,
  answered: AbortSignal | undefined = interrupted && answeredSignal(interrupted),
): AbortSignal | undefined {
  if (!interrupted) return undefined;
  const w: Watch = { pid, killed: new AbortController() };
  if (interrupted.aborted) watch(w, answered);
  else interrupted.addEventListener('abort', () => watch(w, answered), { once: true });
  return w.killed.signal;
}
