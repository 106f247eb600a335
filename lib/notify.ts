// sd_notify(3) for a service manager that started us with Type=notify:
// READY=1 once the mount serves and the policies are applied, RELOADING=1 /
// READY=1 around a SIGHUP's reconcile, STOPPING=1, and a STATUS= line
// `systemctl status` shows. Without $NOTIFY_SOCKET it does nothing.
import { KrsiError } from './errors.js';
import { native } from './addon.js';

/** Send `fields` (KEY=VALUE lines) to $NOTIFY_SOCKET. False when there is none; KrsiError when the send fails. */
export function sdNotify(fields: Record<string, string | number>, socket = process.env.NOTIFY_SOCKET): boolean {
  if (!socket) return false;
  const msg = Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
    .join('\n');
  try {
    native.notify(socket, msg);
  } catch (e) {
    throw KrsiError.from(e);
  }
  return true;
}

/** sdNotify that logs a failed send instead of throwing: a notification never stops the daemon. */
export function notifier(log: { warn(msg: string, f?: Record<string, string>): void }): (fields: Record<string, string | number>) => void {
  return (fields) => {
    try {
      sdNotify(fields);
    } catch (e) {
      log.warn('sd_notify failed', { socket: process.env.NOTIFY_SOCKET ?? '', error: (e as Error).message });
    }
  };
}
