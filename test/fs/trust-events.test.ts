// The events file against real readers (issue 11, points 7 and 8):
//   - poll(2), select(2) and epoll(7) on events opened O_NONBLOCK wait for a
//     record, as on trace_pipe: no readiness while nothing is queued (the
//     reader does not spin), readiness once a record arrives;
//   - a reader that got a harmless signal first (SIGTSTP, a handled SIGINT)
//     and is SIGKILLed more than 5 s later ends then.
// Records are real: this host refuses LSM programs but loads raw
// tracepoints, so bpf/fixtures/event_trigger.bpf.c (loaded with bpftool into
// the daemon's own pinned ring) sends one record each time a process named
// krsi-evtrigger calls getppid(2). Nothing in the daemon is there for tests.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { cleanup, objDir, startDaemon, type Daemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

// Attach the pinned trigger program to sys_enter for as long as this process
// lives, take the comm it answers to, and call getppid(2) COUNT times: COUNT
// records. Prints its pid (the records carry it).
const TRIGGER = `
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_bpf, BPF_OBJ_GET, BPF_RAW_TRACEPOINT_OPEN = 321, 7, 17
def bpf(cmd, attr):
    fd = libc.syscall(SYS_bpf, cmd, attr, len(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), 'bpf(%d)' % cmd)
    return fd
pin = ctypes.create_string_buffer(sys.argv[1].encode())
attr = ctypes.create_string_buffer(128)
struct.pack_into('=Q', attr, 0, ctypes.addressof(pin))
prog = bpf(BPF_OBJ_GET, attr)
tp = ctypes.create_string_buffer(b'sys_enter')
attr = ctypes.create_string_buffer(128)
struct.pack_into('=QI', attr, 0, ctypes.addressof(tp), prog)
bpf(BPF_RAW_TRACEPOINT_OPEN, attr)
libc.prctl(15, b'krsi-evtrigger', 0, 0, 0)  # PR_SET_NAME
for _ in range(int(sys.argv[2])):
    os.getppid()
print(os.getpid(), flush=True)
`;

// A poll-based reader: events opened O_RDONLY|O_NONBLOCK, watched with MODE
// (poll, select or epoll). Prints one JSON line per phase:
//   {"idle": {"wakeups": W, "eagain": E}}   IDLE_MS with nothing sent: how often
//                                           it was told "readable", and how
//                                           many reads then found nothing
//   {"waiting": true}                       then it waits up to 20 s
//   {"woke": R, "data": D}                  R: told readable; D: what read got
//   {"after": R}                            readable again once drained? (300 ms)
const POLLER = `
import errno, json, os, select, sys, time
path, mode, idle_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
if mode == 'poll':
    p = select.poll()
    p.register(fd, select.POLLIN)
    wait = lambda s: any(ev & select.POLLIN for _, ev in p.poll(int(s * 1000)))
elif mode == 'epoll':
    p = select.epoll()
    p.register(fd, select.EPOLLIN)
    wait = lambda s: any(ev & select.EPOLLIN for _, ev in p.poll(s))
else:
    wait = lambda s: fd in select.select([fd], [], [], s)[0]
def read():
    try:
        return os.read(fd, 65536).decode()
    except OSError as e:
        if e.errno != errno.EAGAIN:
            raise
        return None
say = lambda o: print(json.dumps(o), flush=True)
wakeups = eagain = 0
end = time.monotonic() + idle_ms / 1000
while (left := end - time.monotonic()) > 0 and wakeups < 100000:
    if wait(left):
        wakeups += 1
        if read() is None:
            eagain += 1
say({'idle': {'wakeups': wakeups, 'eagain': eagain}})
say({'waiting': True})
woke = wait(20)
say({'woke': woke, 'data': read() if woke else None})
say({'after': wait(0.3)})
`;

// A blocking reader with a SIGINT handler: the signal is harmless to it.
const SIGINT_READER = `
import os, signal, sys
signal.signal(signal.SIGINT, lambda *a: print('sigint', flush=True))
fd = os.open(sys.argv[1], os.O_RDONLY)
print('reading', flush=True)
print('read', os.read(fd, 65536), flush=True)
`;

const pinRoot = `/sys/fs/bpf/krsifs-test-${process.pid}-trust`;
const triggerPin = `/sys/fs/bpf/krsifs-test-${process.pid}-trigger`;
let d: Daemon;

t.before(async () => {
  d = await startDaemon({ args: ['--pin-root', pinRoot, '--ephemeral'] });
  const load = await execa(
    'bpftool',
    [
      'prog', 'load', path.join(objDir, 'fixtures/event_trigger.o'), triggerPin, 'type', 'raw_tracepoint',
      'map', 'name', 'krsi_events', 'pinned', `${pinRoot}/events`,
      'map', 'name', 'krsi_lost', 'pinned', `${pinRoot}/events_lost`,
    ],
    { reject: false },
  );
  if (load.exitCode !== 0) throw new Error(`bpftool could not load the trigger: ${load.stderr}`);
});
t.teardown(async () => {
  if (d) await cleanup(d);
  await rm(triggerPin, { force: true });
  await rm(pinRoot, { recursive: true, force: true });
});

/** Send `count` real records through the daemon's ring; returns the sender's pid. */
async function sendRecords(count = 1): Promise<number> {
  const r = await execa('python3', ['-c', TRIGGER, triggerPin, String(count)]);
  return Number(r.stdout.trim());
}

interface Proc {
  child: ChildProcess;
  pid: number;
  lines: string[];
  /** The first line matching, waiting up to ms for it. */
  line(re: RegExp, ms?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let wake: () => void = () => {};
  const onData = (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake();
  };
  child.stdout!.setEncoding('utf8').on('data', onData);
  child.stderr!.setEncoding('utf8').on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  const line = async (re: RegExp, ms = 10_000): Promise<string> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return hit;
      if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${cmd}: no line matching ${re} (got ${JSON.stringify(lines)})`);
      }
      await Promise.race([new Promise<void>((r) => (wake = r)), sleep(100)]);
    }
  };
  return { child, pid: child.pid!, lines, line, exited };
}

async function procState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** Waits (up to ms) until `pid` is in state `want`; returns the state it was last seen in. */
async function untilState(pid: number, want: string, ms = 5000): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  let s = await procState(pid);
  while (s !== want && Date.now() < deadline) {
    await sleep(50);
    s = await procState(pid);
  }
  return s;
}

/** Waits (up to ms) until `pid` sits in read(2) on the events file, asleep. */
async function untilInRead(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const [nr, fd] = (await readFile(`/proc/${pid}/syscall`, 'utf8').catch(() => '')).split(' ');
    const file = nr === '0' && fd ? await readlink(`/proc/${pid}/fd/${Number(fd)}`).catch(() => '') : '';
    if (file === `${d.mountpoint}/events` && (await procState(pid)) === 'S') return true;
    await sleep(50);
  }
  return false;
}

async function endsWithin(p: Proc, ms: number): Promise<string> {
  const r = await Promise.race([p.exited, sleep(ms).then(() => undefined)]);
  if (!r) return `still there in state ${await procState(p.pid)} ${ms} ms after the kill`;
  return r.signal ?? `exit ${r.code}`;
}

t.test('the trigger sends a real record to a blocking reader', async (t) => {
  const cat = run('cat', [`${d.mountpoint}/events`]);
  t.teardown(() => void cat.child.kill('SIGKILL'));
  t.ok(await untilInRead(cat.pid), 'cat waits in read(2)');
  const pid = await sendRecords(1);
  const line = await cat.line(/program=event_trigger/);
  t.match(line, new RegExp(`^time=\\S+ behaviour=- program=event_trigger pid=${pid} comm=krsi-evtrigger n=\\d+$`));
});

for (const mode of ['poll', 'select', 'epoll']) {
  t.test(`${mode}() on events opened O_NONBLOCK waits for a record, and does not spin`, async (t) => {
    const p = run('python3', ['-c', POLLER, `${d.mountpoint}/events`, mode, '1500']);
    t.teardown(() => void p.child.kill('SIGKILL'));
    const idle = JSON.parse(await p.line(/^\{"idle"/)).idle;
    t.same(idle, { wakeups: 0, eagain: 0 }, `1.5 s with nothing queued: ${mode} never said readable (${JSON.stringify(idle)})`);
    await p.line(/^\{"waiting"/);
    const sender = await sendRecords(1);
    const woke = JSON.parse(await p.line(/^\{"woke"/));
    t.equal(woke.woke, true, `${mode} woke up once a record was sent`);
    t.match(woke.data, new RegExp(`^time=\\S+ behaviour=- program=event_trigger pid=${sender} comm=krsi-evtrigger n=\\d+\\n$`), 'and the read got that record');
    const after = JSON.parse(await p.line(/^\{"after"/));
    t.equal(after.after, false, 'once the record was read, it is not readable any more');
    t.same(await p.exited, { code: 0, signal: null }, 'the reader ended by itself');
  });
}

for (const [what, start, harmless] of [
  ['cat, stopped with SIGTSTP', () => run('cat', [`${d.mountpoint}/events`]), 'SIGTSTP'],
  ['a reader that handles SIGINT', () => run('python3', ['-c', SIGINT_READER, `${d.mountpoint}/events`]), 'SIGINT'],
] as const) {
  t.test(`${what}, then SIGKILLed 6 s later, ends`, async (t) => {
    const r = start();
    t.teardown(() => void r.child.kill('SIGKILL'));
    t.ok(await untilInRead(r.pid), 'the reader waits in read(2) on events');
    r.child.kill(harmless);
    t.equal(await untilState(r.pid, 'D'), 'D', `after ${harmless} the read goes on (the reader sits in D: signal pending, read not answered)`);
    await sleep(6000);
    t.equal(await procState(r.pid), 'D', `6 s later it still waits: ${harmless} did not end the stream`);
    r.child.kill('SIGKILL');
    t.equal(await endsWithin(r, 5000), 'SIGKILL', 'SIGKILL ends it: the reader is reaped');
    if (harmless === 'SIGINT') t.notOk(r.lines.some((l) => l.startsWith('read ')), 'its read never returned data');
    t.equal((await bash(`cat ${d.mountpoint}/hooks`)).exitCode, 0, 'the daemon still serves');
  });
}
