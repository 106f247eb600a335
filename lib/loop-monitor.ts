// KRSIFS_LOOP_MONITOR=1 (opt-in, for npm run bench): log the event loop's
// worst delay every second, so a stall of the loop that serves the mount
// (the kernel waits on it for every FUSE request) is measured inside the
// daemon, not guessed from outside.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from './log.js';

/**
 * Sample the loop every millisecond; every intervalMs (and at exit) log
 * `event loop delay` with max_ms, p99_ms, mean_ms of that interval. A value
 * includes the 1 ms sampling period: an idle loop shows about 1 ms. Returns a
 * stop function.
 */
export function startLoopMonitor(log: Logger, intervalMs = 1000): () => void {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const report = () => {
    if (h.count === 0) return;
    log.info('event loop delay', { max_ms: ms(h.max), p99_ms: ms(h.percentile(99)), mean_ms: ms(h.mean), samples: h.count });
    h.reset();
  };
  const timer = setInterval(report, intervalMs);
  timer.unref();
  process.once('exit', report);
  return () => {
    clearInterval(timer);
    process.removeListener('exit', report);
    h.disable();
  };
}
