// What krsifs records beside each pin (lib/kernel/link-records.ts), on a
// plain directory: symlinks behave the same in bpffs, which the VM suites
// exercise (listing object= and mode=, adoption, policies kept by digest).
import t from 'tap';
import { mkdir, mkdtemp, readdir, readlink, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LinkRecords, formatRecord, parseRecord } from '../../lib/kernel/link-records.js';

const digest = `object=sha256:${'a'.repeat(64)} settings=sha256:${'b'.repeat(64)}`;

t.test('a record holds mode, digest and object; the object may hold any byte but NUL', async (t) => {
  const object = '/opt/x:y\nz\t/deny exec.o';
  t.same(parseRecord(formatRecord({ object, mode: 'monitor', digest })), { object, mode: 'monitor', digest });
  t.same(parseRecord(formatRecord({ object, mode: 'enforce' })), { object, mode: 'enforce', digest: null });
  t.same(parseRecord(null), { object: null, mode: 'enforce', digest: null }, 'no record: enforce, object unknown');
  t.same(parseRecord('/an/older/object/record'), { object: null, mode: 'enforce', digest: null }, 'unreadable: the same');
  t.same(parseRecord('paranoid\n-\n/x.o'), { object: null, mode: 'enforce', digest: null }, 'an unknown mode is not guessed');
});

t.test('write, read, forget, prune; an older krsifs\'s three directories fold into one record', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'krsifs-records-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const r = new LinkRecords(root);
  await r.write(7, { object: '/a.o', mode: 'enforce', digest });
  await r.write(7, { object: '/b.o', mode: 'monitor' }); // replaced in place
  t.same(await r.read(7), { object: '/b.o', mode: 'monitor', digest: null });
  await r.write(8, { object: '/c.o', mode: 'enforce' });
  await r.prune(new Set([8]));
  t.same(await readdir(r.dir), ['8'], 'records of links that are gone are pruned');
  await r.forget(8);
  t.same(await readdir(r.dir), []);

  for (const [what, id, target] of [['link-objects', 5, '/old.o'], ['link-modes', 5, 'monitor'], ['link-digests', 5, digest], ['link-objects', 6, '/gone.o']] as const) {
    await mkdir(path.join(root, what), { recursive: true });
    await symlink(target, path.join(root, what, String(id)));
  }
  await r.migrate(new Set([5]));
  t.same(await r.read(5), { object: '/old.o', mode: 'monitor', digest }, 'the live link keeps what was recorded');
  t.same(await readdir(r.dir), ['5'], 'a link that is gone gets no record');
  t.same((await readdir(root)).sort(), ['link-records'], 'the old directories are removed');
  t.equal(await readlink(path.join(r.dir, '5')), formatRecord({ object: '/old.o', mode: 'monitor', digest }));
});
