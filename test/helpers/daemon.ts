// Start krsifs as its own process on a fresh mountpoint, the way an operator
// does, and take it down again. Clients then talk to the mount through real
// processes: the test process never serves the mount it reads.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, copyFile, mkdtemp, readFile, rm, rmdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const cli = path.join(root, 'dist/lib/cli.js');
export const objDir = path.join(root, 'bpf/obj');

export interface Daemon {
  mountpoint: string;
  /** Its own pin root (one daemon per pin root: test files run side by side). */
  pinRoot: string;
  proc: ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
  /** Resolves with the exit code once the daemon exits. */
  exited: Promise<number | null>;
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === mountpoint);
}

let daemons = 0;

/** `krsifs mount` as its own process, its stderr collected; nothing waited for (startDaemon waits for the mount). */
export async function spawnDaemon(opts: { mountpoint?: string; args?: string[] } = {}): Promise<Daemon> {
  const mountpoint = opts.mountpoint ?? (await mkdtemp(path.join(os.tmpdir(), 'krsifs-mnt-')));
  const args = opts.args ?? [];
  const given = args.indexOf('--pin-root');
  const pinRoot = given >= 0 ? args[given + 1]! : `/sys/fs/bpf/krsifs-test-${process.pid}-${++daemons}`;
  if (given < 0) args.push('--pin-root', pinRoot);
  const proc = spawn(process.execPath, [cli, 'mount', mountpoint, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { mountpoint, pinRoot, proc, log: () => stderr, exited };
}

export async function startDaemon(opts: { mountpoint?: string; args?: string[]; timeoutMs?: number } = {}): Promise<Daemon> {
  const d = await spawnDaemon(opts);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not mount in time:\n${d.log()}`)), opts.timeoutMs ?? 20000);
    d.proc.stderr!.on('data', () => {
      if (/msg=mounted /.test(d.log())) {
        clearTimeout(timer);
        resolve();
      }
    });
    void d.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code}) before mounting:\n${d.log()}`));
    });
  });
  return d;
}

/** Stop the daemon and leave nothing behind, whatever state it is in. */
export async function cleanup(d: Daemon): Promise<void> {
  if (d.proc.exitCode === null && d.proc.signalCode === null) {
    d.proc.kill('SIGTERM');
    const t = setTimeout(() => d.proc.kill('SIGKILL'), 5000);
    await d.exited;
    clearTimeout(t);
  }
  try {
    execFileSync('umount', ['-l', d.mountpoint], { stdio: 'ignore' });
  } catch {
    /* not mounted: fine */
  }
  await rmdir(d.mountpoint).catch(() => {});
  if (d.pinRoot.startsWith('/sys/fs/bpf/krsifs-test-')) await rm(d.pinRoot, { recursive: true, force: true });
}

/** The daemon's error_log entries (their first lines: verifier tails are left out). */
export async function errorLogEntries(d: Daemon): Promise<string[]> {
  const text = await readFile(path.join(d.mountpoint, 'error_log'), 'utf8');
  return text.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
}

/** A copy of `from` at dir/name with the owner and mode given (for tests of the writer's rights). */
export async function ownedCopy(from: string, dir: string, name: string, mode: number, uid: number, gid: number): Promise<string> {
  const p = path.join(dir, name);
  await copyFile(from, p);
  await chown(p, uid, gid);
  await chmod(p, mode);
  return p;
}

/** Poll `ok` every 10 ms until it holds; an Error naming `what` after `ms`. */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
