// Who is behind a FUSE request, from /proc. The kernel does not check
// CAP_MAC_ADMIN for us on a FUSE file, nor resolve the writer's paths: the
// daemon must, and it must ask about the right process in the right terms.
//
// Why reading /proc/PID here is not racy against pid reuse: PID is the task
// (thread) that made the request, and the kernel keeps that task waiting in
// the request until we answer: once the daemon has read a request, even a
// fatal signal leaves it in an uninterruptible wait (fuse's
// request_wait_answer). So while a handler runs, PID cannot exit, be reaped
// or be reused, and its credentials cannot change (it is not running). Every
// check is made before the answer.
//
// Why these reads run on the event loop, not on libuv's pool: an fs.promises
// read is five hand-offs to the pool's four threads, queued behind every
// other request's file work (an unpin that releases a link takes tens of
// milliseconds under emulation), and an answer to anyone, a refusal of a
// writer without CAP_MAC_ADMIN or the kill of a waiting one, must not wait
// in that queue. procfs makes the text
// from memory, with no sleeping lock. And because PID is held in the request,
// the read never drops the last reference to its memory (which would tear
// the address space down in our thread).
import { readFileSync, statSync } from 'node:fs';
import { KrsiError } from '../errors.js';
import type { Credentials } from '../core/kernel-port.js';

export type { Credentials };

export const CAP_DAC_OVERRIDE = 1;
export const CAP_DAC_READ_SEARCH = 2;
export const CAP_MAC_ADMIN = 33;

let daemonUserNs: string | undefined;

function userNsOf(pid: number | 'self'): string {
  const s = statSync(`/proc/${pid}/ns/user`, { bigint: true });
  return `${s.dev}:${s.ino}`;
}

function field(status: string, key: string): string {
  // [ \t]*, not \s*: an empty value ("Groups:\t\n") must not take the next line
  const m = new RegExp(`^${key}:[ \\t]*(.*)$`, 'm').exec(status);
  if (!m) throw new KrsiError('EIO', `/proc status has no ${key} line`);
  return m[1]!.trim();
}

/**
 * The credentials of task `pid`. ESRCH when it cannot be seen: gone, or pid 0
 * (the kernel names no task in our pid namespace: a writer in a sibling or
 * parent pid namespace), which is never trusted.
 */
export async function credentialsOf(pid: number): Promise<Credentials> {
  if (!Number.isInteger(pid) || pid <= 0) {
    throw new KrsiError('ESRCH', `the writer is not visible in the daemon's pid namespace (pid ${pid})`);
  }
  let status: string;
  let ns: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
    ns = userNsOf(pid);
  } catch (e) {
    throw new KrsiError('ESRCH', `process ${pid}: cannot read its /proc entry (${(e as Error).message})`);
  }
  daemonUserNs ??= userNsOf('self');
  const [, , , fsuid] = field(status, 'Uid').split(/\s+/).map(Number);
  const [, , , fsgid] = field(status, 'Gid').split(/\s+/).map(Number);
  const groups = field(status, 'Groups');
  return {
    pid,
    tgid: Number(field(status, 'Tgid')),
    uid: Number(field(status, 'Uid').split(/\s+/)[0]),
    gid: Number(field(status, 'Gid').split(/\s+/)[0]),
    fsuid: fsuid!,
    fsgid: fsgid!,
    groups: groups ? groups.split(/\s+/).map(Number) : [],
    capEff: BigInt('0x' + field(status, 'CapEff')),
    inDaemonUserNs: ns === daemonUserNs,
    comm: field(status, 'Name'),
  };
}

/** Does the task hold capability `cap` in the daemon's (the initial) user namespace? */
export function holds(c: Credentials, cap: number): boolean {
  return c.inDaemonUserNs && ((c.capEff >> BigInt(cap)) & 1n) === 1n;
}

const SIGKILL_BIT = 1n << 8n; // signal 9

/**
 * Is task `pid` being killed (SIGKILL pending for it or its thread group: how
 * every fatal signal shows, lib/fs/signals.ts says why)? A task that is gone
 * counts as killed: nobody waits for the answer.
 */
export async function fatalSignalPending(pid: number): Promise<boolean> {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return ['SigPnd', 'ShdPnd'].some((key) => (BigInt('0x' + (field(status, key) || '0')) & SIGKILL_BIT) !== 0n);
  } catch {
    return true;
  }
}
