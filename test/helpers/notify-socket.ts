// A service manager's notification socket, as systemd makes it: AF_UNIX,
// SOCK_DGRAM, at a path or an abstract name ('@…'). Node has no datagram unix
// sockets, so a small python3 process (setup.sh installs python3) binds it and
// prints each datagram as one JSON string per line.
import { spawn } from 'node:child_process';

const RECEIVER = `
import json, socket, sys
a = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + a[1:] if a.startswith('@') else a)
print('bound', flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

export interface NotifySocket {
  /** What goes in $NOTIFY_SOCKET. */
  address: string;
  /** Every datagram so far, in order. */
  messages: string[];
  /** The first datagram (from `from` on) that `match` accepts. */
  waitFor(match: (m: string) => boolean, from?: number, timeoutMs?: number): Promise<string>;
  close(): void;
}

export async function notifySocket(address: string): Promise<NotifySocket> {
  const proc = spawn('python3', ['-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    proc.on('exit', (code) => reject(new Error(`notify receiver exited (${code}): ${err}`)));
    proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'bound') resolve();
        else messages.push(JSON.parse(line) as string);
      }
      for (const w of waiters) w();
    });
  });
  return {
    address,
    messages,
    waitFor(match, from = 0, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = messages.slice(from).find(match);
          if (m === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching notification in ${timeoutMs} ms; got: ${JSON.stringify(messages)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      proc.removeAllListeners('exit');
      proc.kill('SIGKILL');
    },
  };
}
