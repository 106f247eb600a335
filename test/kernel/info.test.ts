// linkInfo()/progInfo(): the kernel's view by id.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { linkInfo, progInfo } from '../../lib/kernel/index.js';

t.test('ids that do not exist are ENOENT', async (t) => {
  await t.rejects(linkInfo(2 ** 31 - 1), { code: 'ENOENT', message: /link info 2147483647/ }, 'link');
  await t.rejects(progInfo(2 ** 31 - 1), { code: 'ENOENT', message: /program info 2147483647/ }, 'program');
});

t.test('a program the kernel holds agrees with bpftool', async (t) => {
  let progs: { id: number; name?: string; type: string; tag: string }[] = [];
  try {
    progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }));
  } catch {
    progs = [];
  }
  if (progs.length === 0) {
    t.comment('no BPF program is loaded on this machine; nothing to compare');
    return;
  }
  const p = progs[0]!;
  const info = await progInfo(p.id).catch((e: unknown) => e as Error);
  if (info instanceof Error) {
    t.match(info, { code: 'ENOENT' }, 'it went away meanwhile');
    return;
  }
  t.equal(info.id, p.id, 'id');
  t.equal(info.tag, p.tag, 'tag');
  t.equal(info.name, p.name ?? '', 'name');
  t.equal(info.type, p.type === 'cgroup_device' ? 'cgroup_device' : p.type, 'type');
  t.type(info.loadTimeNs, 'bigint', 'load time in ns');
});
