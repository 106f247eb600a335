// FUSE_INTERRUPT reaches the handlers of write, flush and setattr (truncate)
// as an AbortSignal, as it does for read: a writer killed while its request
// waits in the daemon is answered and reaped, whatever came before the kill.
// Clients are real processes (python3) killed with real signals; the fixture
// daemon says what its handlers saw, so each step is proven by the order of
// its lines and by the writer's state, not by timing alone.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { startDaemon } from './fixtures/daemon.js';

const d = await startDaemon(t, 'interrupt');

// One python3 writer: opens FILE for writing, then does OP on it.
//   write: os.write(b'x\n'); truncate: os.ftruncate(fd, 0); close: write, then close.
// With 'usr1' it handles SIGUSR1 (a harmless signal) and says so.
const WRITER = `
import os, signal, sys
path, op = sys.argv[1], sys.argv[2]
if 'usr1' in sys.argv[3:]:
    signal.signal(signal.SIGUSR1, lambda *a: print('got usr1', flush=True))
fd = os.open(path, os.O_WRONLY)
print('opened', flush=True)
if op == 'write':
    print('wrote', os.write(fd, b'x\\n'), flush=True)
elif op == 'truncate':
    os.ftruncate(fd, 0)
    print('truncated', flush=True)
elif op == 'close':
    os.write(fd, b'x\\n')
    print('wrote', flush=True)
    os.close(fd)
    print('closed', flush=True)
`;

interface Writer {
  child: ChildProcess;
  pid: number;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function writer(file: string, op: string, ...flags: string[]): Writer {
  const child = spawn('python3', ['-c', WRITER, `${d.mountpoint}/${file}`, op, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, pid: child.pid!, out: () => out, exited };
}

/** The process's state letter (R, S, D, T, Z...), or undefined once it is reaped. */
async function state(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** Waits (up to ms) until `pid` is in state `want`; returns the state it was last seen in. */
async function untilState(pid: number, want: string, ms = 5000): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let s = await state(pid);
  while (s !== want && Date.now() < deadline) {
    await sleep(50);
    s = await state(pid);
  }
  return s;
}

/** How the process ended, or 'still running' if it has not within ms (it was not answered). */
async function endsWithin(w: Writer, ms: number): Promise<string> {
  const r = await Promise.race([w.exited, sleep(ms).then(() => undefined)]);
  if (!r) return `still running in state ${await state(w.pid)} ${ms} ms after the kill`;
  return r.signal ?? `exit ${r.code}`;
}

for (const [file, op, what] of [
  ['stuck', 'write', 'write'],
  ['stuck', 'truncate', 'truncate'],
  ['stuckflush', 'close', 'flush'],
  ['late', 'write', 'late-write'],
] as const) {
  t.test(`a writer killed while its ${what} waits in the daemon is answered and reaped`, async (t) => {
    const w = writer(file, op);
    await d.waitLine(new RegExp(`^stuck ${what} pid=${w.pid}$`));
    t.equal(await untilState(w.pid, 'S'), 'S', `the ${what} is waiting in the daemon, the writer sleeping in it`);
    w.child.kill('SIGKILL');
    await d.waitLine(new RegExp(`^interrupted ${what} pid=${w.pid}`), 5000);
    t.pass(`the handler's signal aborted (FUSE_INTERRUPT reached it)`);
    await d.waitLine(new RegExp(`^killed ${what} pid=${w.pid}$`), 5000);
    t.pass('the handler saw the writer was being killed');
    t.equal(await endsWithin(w, 5000), 'SIGKILL', 'the writer is reaped, killed');
    if (what === 'late-write') {
      t.ok(
        d.lines.includes(`interrupted ${what} pid=${w.pid} (before the handler looked)`),
        'the interrupt came before the handler looked at its signal, and was not lost',
      );
    }
  });
}

t.test('a writer that got SIGTSTP, then SIGKILL 6 s later, is answered and reaped', async (t) => {
  const w = writer('stuck', 'write');
  await d.waitLine(new RegExp(`^stuck write pid=${w.pid}$`));
  w.child.kill('SIGTSTP');
  await d.waitLine(new RegExp(`^interrupted write pid=${w.pid}$`), 5000);
  t.equal(await untilState(w.pid, 'D'), 'D', 'interrupted, not killed: the write waits on, the writer in D');
  await sleep(6000);
  t.equal(await state(w.pid), 'D', 'still waiting 6 s later (a harmless signal does not end the write)');
  t.notOk(d.lines.includes(`killed write pid=${w.pid}`), 'the handler did not give up on it');
  t.equal((await execa('cat', [`${d.mountpoint}/watching`])).stdout, '1', 'its caller is still watched, 6 s on');
  w.child.kill('SIGKILL');
  await d.waitLine(new RegExp(`^killed write pid=${w.pid}$`), 5000);
  t.pass('the later SIGKILL was seen');
  t.equal(await endsWithin(w, 5000), 'SIGKILL', 'the writer is reaped, killed');
});

t.test('a handler that answers after an interrupt: the writer gets its answer, the daemon serves on', async (t) => {
  const w = writer('answer', 'write', 'usr1');
  await d.waitLine(new RegExp(`^stuck write pid=${w.pid}$`));
  w.child.kill('SIGUSR1');
  await d.waitLine(new RegExp(`^interrupted write pid=${w.pid}$`), 5000);
  t.equal(await endsWithin(w, 5000), 'exit 0', 'the writer ended normally');
  t.match(w.out(), /got usr1\n[^]*wrote 2\n|wrote 2\n[^]*got usr1\n/, 'its write(2) returned the count the handler answered');
  const r = await execa('cat', [`${d.mountpoint}/watching`], { reject: false, timeout: 5000 });
  t.equal(r.exitCode, 0, 'the daemon still answers');
  t.equal(r.stdout, '0', 'and watches no caller once the interrupted request was answered');
  t.equal(d.child.exitCode, null, 'and is alive');
});
