// dirsGeneration (addon/bpf_pins.cc) and KeptListings (lib/kernel/kept-listings.ts):
// a listing is kept only while the kernel says its directories are unchanged.
// On bpffs itself, where pins are made by bpf(BPF_OBJ_PIN) and not by a
// plain create: that path must be seen too, or a kept listing would hide a pin.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirsGeneration } from '../../lib/kernel/index.js';
import { KeptListings } from '../../lib/kernel/kept-listings.js';
import { ensureBpffs } from '../helpers/bpffs.js';

await ensureBpffs();

const dirGeneration = (dir: string) => dirsGeneration([dir]);

const bpffs = `/sys/fs/bpf/krsifs-kept-test-${process.pid}`;

t.test('each change of an entry changes the number, and nothing else does', async (t) => {
  mkdirSync(bpffs);
  t.teardown(() => rmSync(bpffs, { recursive: true, force: true }));
  let g = dirGeneration(bpffs);
  t.ok(g > 0, 'watched');
  t.equal(dirGeneration(bpffs), g, 'unchanged: the same number');
  const step = (what: string, change: () => void) => {
    change();
    const now = dirGeneration(bpffs);
    t.not(now, g, what);
    t.equal(dirGeneration(bpffs), now, `${what}, then nothing: the same number`);
    g = now;
  };
  step('a pin made by bpf(BPF_OBJ_PIN)', () =>
    execFileSync('bpftool', ['map', 'create', `${bpffs}/m`, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'krsi_kept']));
  step('a pin renamed', () => renameSync(`${bpffs}/m`, `${bpffs}/n`));
  step('a record (symlink) made', () => symlinkSync('enforce\n-\n/x.o', `${bpffs}/7`));
  step('a pin removed', () => unlinkSync(`${bpffs}/n`));
  step('a subdirectory made', () => mkdirSync(`${bpffs}/sub`));
  execFileSync('bpftool', ['map', 'create', `${bpffs}/sub/deep`, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'krsi_kept']);
  t.equal(dirGeneration(bpffs), g, 'a pin in a subdirectory is not an entry of this one');
});

t.test('the directory itself: renamed, removed, made again; a missing one cannot be watched', async (t) => {
  const dir = `${bpffs}-self`;
  mkdirSync(dir);
  mkdirSync(`${bpffs}-other`);
  t.teardown(() => {
    rmSync(`${bpffs}-other`, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}-moved`, { recursive: true, force: true });
  });
  const g = dirGeneration(dir);
  const other = dirGeneration(`${bpffs}-other`);
  renameSync(dir, `${dir}-moved`);
  t.equal(dirGeneration(dir), -1, 'renamed away: nothing to watch at the path');
  const otherNow = dirGeneration(`${bpffs}-other`);
  t.not(otherNow, other, 'every number changes: watches follow inodes, not names');
  t.equal(dirGeneration(`${bpffs}-other`), otherNow, 'then holds: dropping the watches is not itself a change');
  mkdirSync(dir);
  const again = dirGeneration(dir);
  t.ok(again > 0 && again !== g, 'made again: a new number');
  mkdirSync(`${dir}/pin`);
  t.not(dirGeneration(dir), again, 'the new directory is the one watched');
  rmSync(dir, { recursive: true });
  t.equal(dirGeneration(dir), -1, 'removed');
  t.equal(dirGeneration(`${bpffs}-never`), -1, 'never there');
});

t.test('several directories: one number, which changes with any of them', async (t) => {
  const dirs = [`${bpffs}-a`, `${bpffs}-b`, `${bpffs}-c`];
  for (const d of dirs) mkdirSync(d);
  t.teardown(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  let g = dirsGeneration(dirs);
  t.ok(g > 0);
  for (const d of dirs) {
    mkdirSync(`${d}/x`);
    const now = dirsGeneration(dirs);
    t.not(now, g, `a change in ${d}`);
    t.equal(dirsGeneration(dirs), now, 'then nothing');
    g = now;
  }
  t.equal(dirsGeneration([...dirs, `${bpffs}-never`]), -1, 'one missing: -1');
  t.throws(() => dirsGeneration([]), TypeError, 'none: a programming error');
});

t.test('KeptListings reads again only after a change, and never for a directory it cannot watch', async (t) => {
  const dir = `${bpffs}-kept`;
  mkdirSync(dir);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kept = new KeptListings<{ n: number }>();
  let reads = 0;
  const read = () => [{ n: ++reads }];
  t.same(kept.get([dir], read), [{ n: 1 }]);
  t.same(kept.get([dir], read), [{ n: 1 }], 'unchanged: kept');
  mkdirSync(`${dir}/x`);
  t.same(kept.get([dir], read), [{ n: 2 }], 'an entry made: read again');
  const items = kept.get([dir], read);
  t.throws(() => {
    items[0]!.n = 9;
  }, TypeError, 'what is kept cannot be changed by a caller');
  items.pop();
  t.same(kept.get([dir], read), [{ n: 2 }], 'nor its array');
  t.same(kept.get([dir, `${dir}/missing`], read), [{ n: 3 }]);
  t.same(kept.get([dir, `${dir}/missing`], read), [{ n: 4 }], 'a directory that cannot be watched: read every time');
});
