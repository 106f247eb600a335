// A seeded fuzz of the write grammar and of path resolution, by writers of
// every kind: root, root without CAP_MAC_ADMIN, root of a user namespace of
// its own, an unprivileged uid, and root without the DAC overrides.
// Lines are built from the grammar's pieces (paths absolute, relative, with
// "..", through symlinks into /proc, quoted, KEY=VALUE, !NAME, !*), broken
// by control bytes, bad UTF-8 and length, and split over writes at random.
// Invariants: the daemon lives; every answer is a documented errno; a writer
// without CAP_MAC_ADMIN in the initial user namespace gets nothing but
// EPERM (or EACCES at open) and never clears error_log; nothing is attached
// (this host's kernel refuses every load, so any pin would be a bug).
// KRSIFS_FUZZ_SEED replays a run; KRSIFS_FUZZ_CASES sets its size. Debian's
// /usr/bin/python3 (setup installs it): a pyenv shim under /root is closed to
// the other uids.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { prng } from '../helpers/corpus.js';
import { cleanup, objDir, root, startDaemon } from '../helpers/daemon.js';

const SEED = Number(process.env.KRSIFS_FUZZ_SEED ?? 20261203);
const CASES = Number(process.env.KRSIFS_FUZZ_CASES ?? 1500);
if (!Number.isInteger(CASES) || CASES < 100) throw new Error(`KRSIFS_FUZZ_CASES=${process.env.KRSIFS_FUZZ_CASES}: at least 100`);

/** Every errno the README documents for open, write and close of a krsifs file. */
const DOCUMENTED = new Set([
  'ENOENT', 'EISDIR', 'ENOEXEC', 'EINVAL', 'E2BIG', 'EPERM', 'EACCES', 'ELOOP', 'ENOTDIR', 'ENAMETOOLONG', 'EXDEV',
  'EBUSY', 'ETIMEDOUT', 'EAGAIN',
]);

const IDENTITIES = {
  root: { prefix: [], privileged: true },
  noMacAdmin: { prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-mac_admin'], privileged: false },
  userNs: { prefix: ['unshare', '-Ur'], privileged: false },
  nobody: { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'], privileged: false },
  // CAP_MAC_ADMIN without the DAC overrides: it reaches the daemon (it owns the
  // 0600 files) but may read only what its own rights let it read
  rootWithoutDac: { prefix: ['setpriv', '--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search'], privileged: true },
} as const;
type Identity = keyof typeof IDENTITIES;

interface Case {
  id: number;
  who: Identity;
  cwd: string;
  file: string;
  trunc: boolean;
  chunks: string[];
}
interface Answer {
  id: number;
  open: string;
  writes: string[];
  close: string;
}

/** One long-lived writer process per identity: cases in, answers out. */
function writer(who: Identity) {
  const p = IDENTITIES[who].prefix;
  const argv = [...p, '/usr/bin/python3', path.join(root, 'test/fs/fixtures/fuzz-writer.py')];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  return {
    async play(c: Case): Promise<Answer> {
      proc.stdin!.write(JSON.stringify(c) + '\n');
      const next = await lines.next();
      if (next.done) throw new Error(`the ${who} writer ended`);
      return JSON.parse(next.value as string) as Answer;
    },
    end: () => proc.stdin!.end(),
  };
}

t.test(`seeded fuzz (seed ${SEED}, ${CASES} cases): documented errnos, privileged writers only, nothing attached`, async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const M = d.mountpoint;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-fuzz-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  t.comment(`seed ${SEED} (KRSIFS_FUZZ_SEED replays it)`);

  // the tree the paths point into
  await copyFile(path.join(objDir, 'deny_exec.o'), path.join(dir, 'deny_exec.o'));
  await copyFile(path.join(objDir, 'deny_open.o'), path.join(dir, 'deny_open.o'));
  await copyFile(path.join(objDir, 'fixtures/not_lsm.o'), path.join(dir, 'not_lsm.o'));
  await mkdir(path.join(dir, 'sub'));
  await mkdir(path.join(dir, 'locked'), { mode: 0o700 });
  await chown(path.join(dir, 'locked'), 1234, 1234);
  await copyFile(path.join(objDir, 'deny_exec.o'), path.join(dir, 'locked/deny_exec.o'));
  await copyFile(path.join(objDir, 'deny_exec.o'), path.join(dir, 'secret.o'));
  await chmod(path.join(dir, 'secret.o'), 0o600);
  await chown(path.join(dir, 'secret.o'), 1234, 1234);
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  await symlink('loop-b', path.join(dir, 'loop-a'));
  await symlink('loop-a', path.join(dir, 'loop-b'));
  await symlink('/proc/self/environ', path.join(dir, 'environ.o'));
  await symlink(`/proc/${d.proc.pid}/fd/0`, path.join(dir, 'daemon-fd.o'));
  await symlink('deny_exec.o', path.join(dir, 'link.o'));
  await writeFile(path.join(dir, 'evil\n\x1b[31m.o'), 'not an object');

  const rnd = prng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const behaviours = ['process_execution', 'file_open', 'module_load', 'socket_connect', 'bpf_syscall'];
  const paths = [
    'deny_exec.o', 'deny_open.o', 'not_lsm.o', 'link.o', 'secret.o', 'locked/deny_exec.o', 'fifo', 'sub', 'loop-a',
    'environ.o', 'daemon-fd.o', 'evil\n\x1b[31m.o', 'missing.o', `${dir}/deny_exec.o`, `${dir}/secret.o`,
    `${dir}/sub/../deny_exec.o`, 'sub/../../../../../../etc/passwd', 'proc/self/environ', '../proc/self/environ',
    `/proc/${d.proc.pid}/root${dir}/deny_exec.o`, `/proc/${d.proc.pid}/cwd/x.o`, '/proc/self/fd/0', '/dev/fd/0',
    '/dev/null', '/sys/fs/bpf', '/', '', '.', '..', `${M}/events`, `${M}/error_log`, `${M}/process_execution`,
  ];
  const globals = ['target=/tmp/v', 'target=', 'target', '=x', 'nope=1', `target=${'x'.repeat(300)}`, 'a=b=c', 'target="a b"'];
  const noise = ['\x00', '\x1b[2J', '\x07', '\r', '\t', '"', "'", '\\', '\u202e', '\xff', '!', '!!', '#'];
  const line = (): Buffer => {
    switch (int(8)) {
      case 0:
        return Buffer.from(`!${pick(['deny_exec', 'deny_open', '*', '', 'x'.repeat(40), 'evil\tname', '../x'])}`);
      case 1: {
        const b = Buffer.alloc(int(300));
        for (let i = 0; i < b.length; i++) b[i] = int(256);
        return b;
      }
      case 2:
        return Buffer.alloc(4000 + int(300), 'a');
      default: {
        let s = pick(paths);
        if (int(4) === 0) s = `'${s}'`;
        if (int(4) === 0) s = `"${s}"`;
        for (let n = int(3); n > 0; n--) s += ' ' + pick(globals);
        if (int(5) === 0) {
          const at = int(s.length + 1);
          s = s.slice(0, at) + pick(noise) + s.slice(at);
        }
        return Buffer.from(s, 'latin1');
      }
    }
  };
  const cases: Case[] = [];
  for (let id = 0; id < CASES; id++) {
    const who = pick(Object.keys(IDENTITIES) as Identity[]);
    const file = int(10) === 0 ? path.join(M, 'error_log') : path.join(M, pick(behaviours));
    // one to three lines, the last maybe without its newline, cut into random writes
    let bytes = Buffer.alloc(0);
    for (let n = 1 + int(3); n > 0; n--) bytes = Buffer.concat([bytes, line(), Buffer.from(n > 1 || int(3) ? '\n' : '')]);
    const chunks: string[] = [];
    for (let at = 0; at < bytes.length; ) {
      const len = 1 + int(Math.max(1, bytes.length - at));
      chunks.push(bytes.subarray(at, at + len).toString('base64'));
      at += len;
    }
    if (chunks.length === 0) chunks.push('');
    cases.push({ id, who, cwd: pick([dir, '/', `${dir}/sub`, '/proc', objDir]), file, trunc: int(4) === 0, chunks });
  }

  const writers = Object.fromEntries((Object.keys(IDENTITIES) as Identity[]).map((w) => [w, writer(w)])) as Record<
    Identity,
    ReturnType<typeof writer>
  >;
  t.teardown(() => Object.values(writers).forEach((w) => w.end()));
  const marker = '!fuzz_marker';
  await writeFile(path.join(M, 'process_execution'), marker + '\n').catch(() => {}); // an entry to watch
  const seen = new Map<string, number>();
  let failures = 0;
  const started = Date.now();
  for (const c of cases) {
    const a = await writers[c.who].play(c);
    const answers = [a.open, ...a.writes, a.close].filter((x) => x !== 'ok');
    for (const e of answers) seen.set(e, (seen.get(e) ?? 0) + 1);
    const bad = answers.filter((e) => !DOCUMENTED.has(e));
    const privileged = IDENTITIES[c.who].privileged;
    // without the right, not even the open succeeds: EPERM from the daemon, or
    // EACCES from the kernel's mode check for a uid that is not root
    const leaked = !privileged && a.open !== 'EPERM' && a.open !== 'EACCES';
    if (bad.length || leaked) {
      failures++;
      if (failures <= 10) {
        t.fail(`case ${c.id} (${c.who}, ${path.basename(c.file)}): ${JSON.stringify(a)}`, {
          lines: c.chunks.map((x) => Buffer.from(x, 'base64').toString('latin1')),
        });
      }
    }
    if (d.proc.exitCode !== null) {
      t.fail(`the daemon died at case ${c.id}`);
      break;
    }
  }
  t.comment(`${CASES} cases in ${Date.now() - started} ms; answers: ${[...seen].map(([k, v]) => `${k}×${v}`).join(' ')}`);
  t.equal(failures, 0, 'every answer documented; no unprivileged writer got past EPERM');
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
  for (const b of behaviours) t.equal(await readFile(path.join(M, b), 'utf8'), '', `${b}: nothing attached`);
  const pins = (await readdir(d.pinRoot, { recursive: true })).filter((p) => !/^(events|link-records|link-observers|observer-programs|[a-z_]+)$/.test(p));
  t.same(pins, [], 'no pin was made');
  t.ok(seen.get('EPERM') ?? 0, 'unprivileged writers were refused');
  t.ok((seen.get('ENOENT') ?? 0) + (seen.get('EINVAL') ?? 0) > 0, 'privileged writers reached the grammar and the paths');
});
