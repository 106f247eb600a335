// Node opens its inspector when the process gets SIGUSR1 (node 20 has no
// --disable-sigusr1): a debugger on 127.0.0.1:9229 that runs whatever code a
// connection sends it, with no password, and any local user may connect. For
// a daemon that runs as root, that is a root shell for everyone on the machine,
// one `pkill -USR1 node` (a log-rotation habit) away. A listener of our own
// replaces node's handler. The CLI imports this module before any other of
// its own, so the listener is in place from krsifs's first line; before it,
// during node's own start-up (tens of milliseconds), node's handler is still
// the one that runs.
import type { Logger } from './log.js';

const WHY = "SIGUSR1 ignored: node would open its inspector on 127.0.0.1:9229, which runs any code a local connection sends, with the daemon's rights";
let warn: (() => void) | null = null;
let early = 0;
process.on('SIGUSR1', () => (warn ? warn() : early++));

/** Log each ignored SIGUSR1 from now on, and those that came before. */
export function logInspectorSignals(log: Logger): void {
  warn = () => log.warn(WHY, {});
  for (; early > 0; early--) warn();
}
