// The mount() API in-process: errors, errno mapping, pending requests at
// unmount, exactly-once replies. Clients here use fs.promises only (libuv's
// thread pool), never blocking calls: this process serves the mount.
import t, { type Test } from 'tap';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { KrsiError } from '../../lib/errors.js';
import { mount, type FsHandlers, type Mount, type Stat } from '../../lib/fuse/index.js';
import { fuse } from '../../lib/fuse/native.js';

async function mountpoint(t: Test, name: string): Promise<string> {
  const mp = await fs.mkdtemp(path.join(os.tmpdir(), `krsifs-${name}-`));
  t.teardown(async () => {
    await execa('umount', ['-l', mp], { reject: false });
    await fs.rmdir(mp).catch(() => {});
  });
  return mp;
}

const dir: Stat = { mode: 0o040755, size: 0, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 };
const file: Stat = { ...dir, mode: 0o100644 };

function handlers(over: Partial<FsHandlers>): FsHandlers {
  return {
    getattr: (p) => (p === '/' ? dir : file),
    readdir: () => [],
    open: () => 1,
    read: () => Buffer.alloc(0),
    write: (_p, _fh, data) => data.length,
    truncate: () => {},
    flush: () => {},
    release: () => {},
    ...over,
  };
}

t.test('mount errors carry errno and name the mountpoint', async (t) => {
  const mp = await mountpoint(t, 'errors');
  const missing = path.join(mp, 'missing');
  await t.rejects(mount(missing, handlers({})), { name: 'KrsiError', code: 'ENOENT', message: `mount ${missing}: No such file or directory` }, 'a missing directory is ENOENT');
  const plain = path.join(mp, 'plain');
  await fs.writeFile(plain, '');
  t.teardown(() => fs.rm(plain, { force: true }));
  await t.rejects(mount(plain, handlers({})), { code: 'ENOTDIR', message: new RegExp(plain) }, 'a file is ENOTDIR');
  await t.rejects(mount(mp, handlers({}), { options: ['no_such_option'] }), { code: 'EINVAL', message: /unknown option/ }, 'a bad option is EINVAL with libfuse’s words');
});

t.test('what handlers throw becomes the errno of the call', async (t) => {
  const mp = await mountpoint(t, 'errno');
  const unexpected: unknown[] = [];
  const m = await mount(
    mp,
    handlers({
      getattr: (p) => {
        if (p === '/') return dir;
        if (p === '/bug') throw new Error('a bug');
        if (p === '/denied') return file;
        throw new KrsiError('ENOENT', 'none');
      },
      readdir: () => ['denied'],
      open: async () => {
        throw Object.assign(new Error('node style'), { code: 'EACCES' });
      },
    }),
    { onError: (e) => unexpected.push(e) },
  );
  t.teardown(() => m.unmount());
  await t.rejects(fs.stat(`${mp}/nothere`), { code: 'ENOENT' }, 'KrsiError ENOENT is ENOENT');
  await t.rejects(fs.stat(`${mp}/bug`), { code: 'EIO' }, 'an unknown exception is EIO');
  t.match(unexpected, [{ message: 'a bug' }], 'and goes to onError');
  await t.rejects(fs.readFile(`${mp}/denied`), { code: 'EACCES' }, 'a Node error code is its errno');
  t.same(await fs.readdir(mp), ['denied'], 'readdir lists the names');
});

t.test('unmount answers pending requests EIO, once, and is idempotent', async (t) => {
  const mp = await mountpoint(t, 'pending');
  let started!: () => void;
  const reading = new Promise<void>((r) => (started = r));
  let release!: (b: Buffer) => void;
  let answered!: () => void;
  const lateAnswer = new Promise<void>((r) => (answered = r));
  const unexpected: unknown[] = [];
  const m: Mount = await mount(
    mp,
    handlers({
      read: () => {
        started();
        return new Promise<Buffer>((r) => (release = r)).finally(() => setImmediate(answered));
      },
    }),
    { onError: (e) => unexpected.push(e) },
  );
  const read = fs.readFile(`${mp}/f`);
  await reading;
  await m.unmount();
  await t.rejects(read, { code: 'EIO' }, 'the pending read fails EIO');
  t.equal(m.mounted, false, 'not mounted any more');
  release(Buffer.from('late'));
  await lateAnswer;
  await new Promise((r) => setImmediate(r));
  t.same(unexpected, [], 'a late answer is dropped: no error, nothing thrown');
  await t.resolves(m.unmount(), 'unmount twice is fine');
  t.ok((await fs.stat(mp)).isDirectory(), 'the mountpoint is a plain directory again');
});

t.test('a reply is delivered once', async (t) => {
  const mp = await mountpoint(t, 'once');
  const results: boolean[] = [];
  const s = fuse.fuseMount(mp, ['fsname=once'], (op, req, reply) => {
    if (op === 'getattr') {
      results.push(reply(0, { ino: 1, mode: 0o040755, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 } as never));
      results.push(reply(0, undefined));
    } else {
      reply(38); // ENOSYS
    }
  });
  t.teardown(() => s.unmount());
  await fs.stat(mp);
  t.same(results.slice(0, 2), [true, false], 'the second reply returns false and sends nothing');
  s.unmount();
  t.equal(s.isMounted(), false, 'unmounted');
});
