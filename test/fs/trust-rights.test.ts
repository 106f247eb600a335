// The object is opened with the writer's file access rights (fsuid, fsgid,
// groups, and only the capabilities it holds), never the daemon's: CAP_MAC_ADMIN
// lets a writer attach policies, not read other users' files through root.
// Issue 11, point 5. On this host the kernel refuses LSM loads, so "got in"
// means the daemon asked the kernel (error_log: "load program … EPERM").
import t from 'tap';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cleanup, objDir, startDaemon, type Daemon, errorLogEntries as entries, ownedCopy } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';

const obj = path.join(objDir, 'deny_exec.o');
const reachedKernel = /EPERM \(Operation not permitted\): load program deny_exec/;
const USER = 1000;
const GROUP = 4242;

/** Root, CAP_MAC_ADMIN kept, without the capabilities that bypass file permissions. */
const rootNoDac = 'setpriv --reuid=0 --inh-caps=-all --bounding-set=-dac_override,-dac_read_search';
/** Root without CAP_DAC_OVERRIDE but with CAP_DAC_READ_SEARCH (which lets it read any file). */
const rootReadSearch = 'setpriv --reuid=0 --inh-caps=-all --bounding-set=-dac_override';
/** An ordinary user granted CAP_MAC_ADMIN and nothing else. */
const userMacAdmin = (groups: string) =>
  `setpriv --reuid=${USER} --regid=${USER} ${groups} --inh-caps=+mac_admin --ambient-caps=+mac_admin`;

interface Outcome {
  /** What the writer could do itself with the file: cat's answer. */
  own: string;
  /** The write's answer: 'ok' or the C library's words. */
  write: string;
  entry: string;
}

/**
 * As `who`, try to read `file` itself, then write it to process_execution
 * (through fd 3, opened by root: the behaviour files are 0600 root, and what
 * is checked is the writer, not the opener).
 */
async function as(d: Daemon, who: string, file: string): Promise<Outcome> {
  const before = (await entries(d)).length;
  const r = await bash(
    `exec 3>${d.mountpoint}/process_execution; ${who} bash -c '` +
      `if err=$(cat "$0" 2>&1 >/dev/null); then echo "own=ok"; else echo "own=\${err##*: }"; fi; ` +
      `if err=$( { echo "$0" >&3; } 2>&1 ); then echo "write=ok"; else echo "write=\${err##*: }"; fi' ${file}`,
  );
  const own = /own=(.*)/.exec(r.stdout)?.[1] ?? `? ${r.stdout} ${r.stderr}`;
  const write = /write=(.*)/.exec(r.stdout)?.[1] ?? `? ${r.stdout} ${r.stderr}`;
  const after = await entries(d);
  return { own, write, entry: after.length === before + 1 ? after.at(-1)! : `(${after.length - before} new entries)` };
}

t.test('files the writer may not read are not read for it', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-rights-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const put = (name: string, mode: number, uid: number, gid: number) => ownedCopy(obj, dir, name, mode, uid, gid);
  await put('users.o', 0o600, USER, USER); // another user's private file (for root)
  await put('roots.o', 0o600, 0, 0); // root's private file (for the user)
  await put('group.o', 0o640, 0, GROUP); // readable by group GROUP
  await put('open.o', 0o644, 0, 0);
  for (const [sub, uid] of [['userdir', USER], ['rootdir', 0]] as const) {
    await mkdir(path.join(dir, sub), { mode: 0o700 });
    await chown(path.join(dir, sub), uid, uid);
    await put(`${sub}/inner.o`, 0o644, uid, uid);
  }
  const P = (n: string) => path.join(dir, n);

  await t.test('root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, with CAP_MAC_ADMIN', async (t) => {
    for (const [what, file] of [
      ["another user's 0600 file", 'users.o'],
      ['a file under a 0700 directory it cannot enter', 'userdir/inner.o'],
    ] as const) {
      const o = await as(d, rootNoDac, P(file));
      t.equal(o.own, 'Permission denied', `${what}: the writer cannot read it itself`);
      t.equal(o.write, 'Permission denied', `${what}: EACCES`);
      t.match(o.entry, /EACCES .*permission denied/, `${what}: error_log says EACCES`);
      t.notMatch(o.entry, /load program/, `${what}: nothing reached the kernel`);
    }
    // a name that does not exist under that directory: the writer cannot tell, nor can it through us
    const inner = await as(d, rootNoDac, P('userdir/inner.o'));
    const missing = await as(d, rootNoDac, P('userdir/missing.o'));
    t.equal(missing.own, 'Permission denied', 'the writer itself cannot tell a missing file from an unreadable one there');
    t.equal(missing.write, inner.write, 'nor can it from the errno');
    t.equal(
      missing.entry.replace(/^\S+ /, '').replaceAll('missing.o', 'NAME'),
      inner.entry.replace(/^\S+ /, '').replaceAll('inner.o', 'NAME'),
      'nor from the error_log entry',
    );
    for (const file of ['roots.o', 'open.o']) {
      const o = await as(d, rootNoDac, P(file));
      t.equal(o.own, 'ok', `${file}: readable by fsuid 0 as owner or by mode`);
      t.match(o.entry, reachedKernel, `${file}: reaches the kernel`);
    }
  });

  await t.test('root with CAP_DAC_READ_SEARCH: it may read any file, so may the daemon for it', async (t) => {
    for (const file of ['users.o', 'userdir/inner.o']) {
      const o = await as(d, rootReadSearch, P(file));
      t.equal(o.own, 'ok', `${file}: the writer reads it itself`);
      t.match(o.entry, reachedKernel, `${file}: reaches the kernel`);
    }
  });

  await t.test('an ordinary user with CAP_MAC_ADMIN', async (t) => {
    const user = userMacAdmin('--clear-groups');
    for (const [what, file] of [
      ["root's 0600 file", 'roots.o'],
      ['a file under root\'s 0700 directory', 'rootdir/inner.o'],
      ['a 0640 file of a group it is not in', 'group.o'],
    ] as const) {
      const o = await as(d, user, P(file));
      t.equal(o.own, 'Permission denied', `${what}: the writer cannot read it itself`);
      t.equal(o.write, 'Permission denied', `${what}: EACCES`);
      t.notMatch(o.entry, /load program/, `${what}: nothing reached the kernel`);
    }
    const inner = await as(d, user, P('rootdir/inner.o'));
    const missing = await as(d, user, P('rootdir/missing.o'));
    t.equal(missing.write, inner.write, 'missing and unreadable look the same under a directory it cannot search');
    for (const [what, file, groups] of [
      ['its own 0600 file', 'users.o', '--clear-groups'],
      ['a file in its own 0700 directory', 'userdir/inner.o', '--clear-groups'],
      ['a 0640 file of a supplementary group it is in', 'group.o', `--groups=${GROUP}`],
      ['a world-readable file', 'open.o', '--clear-groups'],
    ] as const) {
      const o = await as(d, userMacAdmin(groups), P(file));
      t.equal(o.own, 'ok', `${what}: the writer reads it itself`);
      t.match(o.entry, reachedKernel, `${what}: reaches the kernel`);
    }
  });
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
});
