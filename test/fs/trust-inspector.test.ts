// SIGUSR1 makes node open its inspector, a debugger on 127.0.0.1 that runs
// any code a local connection sends: for the root daemon, a root shell for
// every local user. The daemon must ignore it and say so; the premise (node
// itself would listen, and the check below sees that) is tested first, so the
// test cannot pass by looking in the wrong place.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { cleanup, startDaemon, until } from '../helpers/daemon.js';

/** The TCP sockets `pid` listens on (its fds' socket inodes found LISTEN in its netns's tables). */
async function listening(pid: number): Promise<string[]> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of (await readFile(`/proc/${pid}/net/${table}`, 'utf8')).split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9]!)) out.push(`${table} ${f[1]}`);
    }
  }
  return out;
}
t.test('premise: a plain node process given SIGUSR1 listens (its inspector), and the check sees it', async (t) => {
  // port 0: any free port, so that nothing else on 9229 decides the outcome
  const p = spawn(process.execPath, ['--inspect-port=0', '-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  t.teardown(() => void p.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 300)); // node's own SIGUSR1 handler is set early in its start-up
  t.same(await listening(p.pid!), [], 'nothing before the signal');
  p.kill('SIGUSR1');
  await until('the inspector listens', async () => (await listening(p.pid!)).length > 0);
  t.match(err, /Debugger listening on ws:\/\/127\.0\.0\.1:\d+\//);
});

t.test('the daemon ignores SIGUSR1: no listening socket, a warning, and it goes on serving', async (t) => {
  const d = await startDaemon({ args: ['--policies', ''] });
  t.teardown(() => cleanup(d));
  const warnings = () => d.log().split('msg="SIGUSR1 ignored: ').length - 1;
  // one at a time: two pending SIGUSR1s are one signal
  for (const n of [1, 2]) {
    d.proc.kill('SIGUSR1');
    await until(`warning ${n}, or a listener`, async () => warnings() === n || (await listening(d.proc.pid!)).length > 0);
    t.same(await listening(d.proc.pid!), [], `no inspector after SIGUSR1 ${n}`);
  }
  t.match(d.log(), /level=warn msg="SIGUSR1 ignored: node would open its inspector on 127\.0\.0\.1:9229, which runs any code a local connection sends, with the daemon's rights"/);
  await new Promise((r) => setTimeout(r, 500)); // an inspector would be listening by now (the premise: well under this)
  t.same(await listening(d.proc.pid!), [], 'no inspector');
  t.notMatch(d.log(), /Debugger listening/);
  t.match(await readFile(`${d.mountpoint}/hooks`, 'utf8'), /bprm_check_security/, 'still serving');
  d.proc.kill('SIGTERM');
  t.equal(await d.exited, 0);
});
