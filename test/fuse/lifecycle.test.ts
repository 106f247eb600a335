// How a mount ends: daemon killed (stale mount, detached by detachStaleMount),
// SIGTERM (clean unmount), umount -l behind the daemon's back (it notices).
import t from 'tap';
import fs from 'node:fs/promises';
import { execa } from 'execa';
import { detachStaleMount } from '../../lib/fuse/index.js';
import { startDaemon, mountFsType } from './fixtures/daemon.js';

t.test('SIGKILL leaves a stale mount that detachStaleMount removes', async (t) => {
  const d = await startDaemon(t, 'sigkill');
  t.ok((await fs.stat(d.mountpoint)).isDirectory(), 'the root\'s attributes, kept by the kernel for a second');
  d.child.kill('SIGKILL');
  t.match(await d.exited, { signal: 'SIGKILL' }, 'the daemon is dead');
  await t.rejects(fs.statfs(d.mountpoint), { code: 'ENOTCONN' }, 'statfs of the mountpoint gives ENOTCONN at once');
  await new Promise((r) => setTimeout(r, 1100));
  await t.rejects(fs.stat(d.mountpoint), { code: 'ENOTCONN' }, 'and stat once the kept attributes expired');
  t.equal(detachStaleMount(d.mountpoint), true, 'detachStaleMount reports a stale mount');
  t.equal(await mountFsType(d.mountpoint), undefined, 'the mount is gone from mountinfo');
  t.ok((await fs.stat(d.mountpoint)).isDirectory(), 'the mountpoint is a plain directory again');
  t.same(await fs.readdir(d.mountpoint), [], 'and empty');
  t.equal(detachStaleMount(d.mountpoint), false, 'a second call finds nothing to do');
});

t.test('SIGTERM unmounts cleanly and exits 0', async (t) => {
  const d = await startDaemon(t, 'sigterm');
  t.equal(await mountFsType(d.mountpoint), 'fuse.memfs', 'mounted');
  d.child.kill('SIGTERM');
  t.same(await d.exited, { code: 0, signal: null }, 'the daemon exits 0 on its own');
  t.ok(d.lines.includes('unmounted'), 'after unmounting');
  t.equal(await mountFsType(d.mountpoint), undefined, 'the mount is gone from mountinfo');
  t.equal(detachStaleMount(d.mountpoint), false, 'nothing stale is left');
});

t.test('umount -l behind the daemon is noticed', async (t) => {
  const d = await startDaemon(t, 'lazy');
  await execa('umount', ['-l', d.mountpoint]);
  t.equal(await d.waitLine(/^lost$/), 'lost', 'onUnmounted runs');
  t.same(await d.exited, { code: 0, signal: null }, 'the daemon exits 0 on its own');
});
