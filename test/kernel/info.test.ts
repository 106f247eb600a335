// linkInfo()/progInfo(): the kernel's view by id; pinnedLinks() of a pin that is not a link.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkInfo, pinnedLinks, progInfo } from '../../lib/kernel/index.js';
import { ensureBpffs } from '../helpers/bpffs.js';

await ensureBpffs();

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');

t.test('ids that do not exist are ENOENT', async (t) => {
  t.same(await pinnedLinks('/sys/fs/bpf/krsifs-no-such-dir'), [], 'a missing pin directory lists nothing');
  await t.rejects(linkInfo(2 ** 31 - 1), { code: 'ENOENT', message: /link info 2147483647/ }, 'link');
  await t.rejects(progInfo(2 ** 31 - 1), { code: 'ENOENT', message: /program info 2147483647/ }, 'program');
});

// A program of our own to compare: a socket filter (bpf/fixtures/socket_only.bpf.c),
// which loads where LSM programs are refused, loaded and pinned by bpftool. The
// LSM side (progInfo and linkInfo of an attached LSM program against bpftool)
// is checked in the VM suite: test/vm/fixtures/kernel-steps.ts.
t.test('a program the kernel holds: progInfo agrees with bpftool', async (t) => {
  const dir = `/sys/fs/bpf/krsifs-info-test-${process.pid}`;
  const pin = `${dir}/prog`;
  mkdirSync(dir);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('bpftool', ['prog', 'load', path.join(objDir, 'fixtures/socket_only.o'), pin]);
  const p = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'pinned', pin], { encoding: 'utf8' })) as {
    id: number; name: string; type: string; tag: string; gpl_compatible: boolean; uid: number; btf_id?: number;
  };
  t.equal(p.name, 'krsi_info_sock', 'bpftool loaded our program');
  const info = await progInfo(p.id);
  t.equal(info.id, p.id, 'id');
  t.equal(info.name, p.name, 'name');
  t.equal(info.type, p.type, 'type');
  t.equal(info.type, 'socket_filter', 'a socket filter');
  t.equal(info.tag, p.tag, 'tag');
  t.equal(info.gplCompatible, p.gpl_compatible, 'GPL-compatible');
  t.equal(info.uid, p.uid, 'uid');
  t.equal(info.btfId, p.btf_id ?? 0, 'BTF id');
  t.equal(info.hook, null, 'no LSM hook');
  t.same(
    await pinnedLinks(dir),
    [{ name: 'prog', linkId: 0, progId: 0, hook: null, object: null, foreign: 'a prog' }],
    'pinnedLinks: a pinned program is listed as foreign, not a link',
  );
  t.type(info.loadTimeNs, 'bigint', 'load time in ns');
  t.ok(info.loadTimeNs > 0n, 'and set');
  rmSync(pin);
  // the pin was the only reference: the kernel frees the program (after an RCU grace period)
  let gone: unknown = null;
  for (let i = 0; i < 400 && gone === null; i++) {
    gone = await progInfo(p.id).then(() => null, (e: unknown) => e);
    if (gone === null) await new Promise((r) => setTimeout(r, 50));
  }
  t.match(gone, { code: 'ENOENT' }, 'once its pin is removed, progInfo says ENOENT');
});
