// The core's own logic (replace order, all or nothing, ordering, error_log)
// with a double for the kernel layer. This is not evidence that the kernel
// path works: the VM suite is.
import t from 'tap';
import { Krsi } from '../../lib/core/krsi.js';
import { KrsiError } from '../../lib/errors.js';
import type { AttachedProgram, KernelPort, ObjectFacts } from '../../lib/core/kernel-port.js';
import type { ResolvedBehaviour } from '../../lib/core/catalogue.js';

const caller = { pid: process.pid, uid: 0, gid: 0 };
const catalogue: ResolvedBehaviour[] = [
  { behaviour: 'process_execution', candidates: ['bprm_check_security'], hook: 'bprm_check_security', reason: '' },
  { behaviour: 'file_open', candidates: ['file_open'], hook: 'file_open', reason: '' },
  { behaviour: 'gone', candidates: ['nope'], hook: null, reason: 'none' },
];

/** Objects are named by path; their "bytes" are the path. */
class FakeKernel implements KernelPort {
  events: string[] = [];
  objects = new Map<string, ObjectFacts>();
  delay = new Map<string, number>();
  failLoad = new Map<string, KrsiError>();
  private nextId = 100;

  lsm(path: string, names: string[], hook: string | null = null, globals: string[] = []) {
    this.objects.set(path, {
      license: 'GPL',
      programs: names.map((name) => ({ name, section: hook ? `lsm/${hook}` : 'lsm', type: 'lsm', isLsm: true, hook, sleepable: false })),
      globals: globals.map((name) => ({ name, size: 256, section: '.rodata' })),
    });
  }

  async readObject(_pid: number, path: string) {
    if (!this.objects.has(path)) throw new KrsiError('ENOENT', `open ${path}: no such file`);
    return { data: Buffer.from(path), path: `/abs/${path}` };
  }

  async inspect(data: Buffer) {
    return this.objects.get(data.toString())!;
  }

  async loadAndAttach(data: Buffer, hook: string): Promise<AttachedProgram[]> {
    const path = data.toString();
    const d = this.delay.get(path);
    if (d) await new Promise((r) => setTimeout(r, d));
    const fail = this.failLoad.get(path);
    if (fail) {
      this.events.push(`fail ${path}`);
      throw fail;
    }
    return this.objects.get(path)!.programs.map((p) => {
      const id = this.nextId++;
      this.events.push(`attach ${p.name} ${id} ${hook}`);
      return {
        name: p.name,
        progId: id,
        linkId: id + 1000,
        link: { id: id + 1000, progId: id, detach: async () => void this.events.push(`detach ${id}`) },
      };
    });
  }
}

function setup() {
  const k = new FakeKernel();
  const core = new Krsi(k, catalogue, { errorLogSize: 5 });
  return { k, core };
}

t.test('files exist only for behaviours that resolved', async (t) => {
  const { core } = setup();
  t.same(core.behaviours(), ['process_execution', 'file_open']);
  t.match(core.hooksText(), /^process_execution\tbprm_check_security\tavailable\n/);
  t.match(core.hooksText(), /gone\t-\tunavailable: none\n/);
});

t.test('attach lists NAME, HOOK, ids and the object, tab-separated', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec'], null, ['target']);
  await core.execute('process_execution', 'a.o target=/tmp/v', caller);
  t.equal(core.listing('process_execution'), 'deny_exec\tbprm_check_security\tprog_id=100\tlink_id=1100\tobject=/abs/a.o\n');
  t.equal(core.listing('file_open'), '');
});

t.test('same-name replace attaches the new program before detaching the old', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec']);
  k.lsm('b.o', ['deny_exec']);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('process_execution', 'b.o', caller);
  t.same(k.events, ['attach deny_exec 100 bprm_check_security', 'attach deny_exec 101 bprm_check_security', 'detach 100']);
  t.match(core.listing('process_execution'), /^deny_exec\t.*prog_id=101\t.*object=\/abs\/b.o\n$/);
});

t.test('a failed load changes nothing and leaves one error_log entry', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec']);
  k.lsm('bad.o', ['deny_exec', 'other']);
  await core.execute('process_execution', 'a.o', caller);
  const before = core.listing('process_execution');
  k.failLoad.set('bad.o', new KrsiError('EACCES', 'load program other: invalid mem access', { verifierLog: ['0: r0 = *(u64 *)(r1 +0)', 'invalid mem access'] }));
  await t.rejects(core.execute('process_execution', 'bad.o', caller), { code: 'EACCES' });
  t.equal(core.listing('process_execution'), before, 'what was attached stays attached');
  const log = core.errorLog.text();
  t.match(log, /process_execution: "bad.o": EACCES \(Permission denied\): load program other: invalid mem access/);
  t.match(log, /    verifier: invalid mem access\n$/);
});

t.test('objects the file cannot take are EINVAL before the kernel sees them', async (t) => {
  const { k, core } = setup();
  k.lsm('open.o', ['deny_open'], 'file_open');
  k.objects.set('sock.o', { license: 'GPL', programs: [{ name: 'f', section: 'socket', type: 'socket_filter', isLsm: false, hook: null, sleepable: false }], globals: [] });
  k.objects.set('empty.o', { license: 'GPL', programs: [], globals: [] });
  k.lsm('g.o', ['deny_exec'], null, ['target']);
  await t.rejects(core.execute('process_execution', 'open.o', caller), { code: 'EINVAL', message: /hook file_open .*write it to file_open instead/ });
  await t.rejects(core.execute('process_execution', 'sock.o', caller), { code: 'EINVAL', message: /program f is a socket_filter program/ });
  await t.rejects(core.execute('process_execution', 'empty.o', caller), { code: 'EINVAL', message: /no program/ });
  await t.rejects(core.execute('process_execution', 'g.o nope=1', caller), { code: 'EINVAL', message: /no const volatile global named nope .*target/ });
  await t.rejects(core.execute('process_execution', 'missing.o', caller), { code: 'ENOENT' });
  t.same(k.events, [], 'the kernel was never asked');
  t.equal(core.errorLog.list().length, 5, 'one entry per failed write');
  await core.execute('file_open', 'open.o', caller);
  t.match(core.listing('file_open'), /^deny_open\tfile_open\t/);
});

t.test('!NAME detaches one, !* all, an unknown name is ENOENT', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['one', 'two']);
  k.lsm('c.o', ['three']);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('process_execution', 'c.o', caller);
  await core.execute('process_execution', '!two', caller);
  t.same(core.registry.list('process_execution').map((a) => a.name), ['one', 'three']);
  await t.rejects(core.execute('process_execution', '!two', caller), { code: 'ENOENT', message: /attached: one, three/ });
  await core.execute('process_execution', '!*', caller);
  t.equal(core.listing('process_execution'), '');
  await core.execute('process_execution', '!*', caller);
});

t.test('lines for one file run in order; files do not wait for each other', async (t) => {
  const { k, core } = setup();
  k.lsm('slow.o', ['slow']);
  k.lsm('fast.o', ['fast']);
  k.lsm('open.o', ['opener']);
  k.delay.set('slow.o', 200);
  const order: string[] = [];
  const a = core.execute('process_execution', 'slow.o', caller).then(() => order.push('slow'));
  const b = core.execute('process_execution', 'fast.o', caller).then(() => order.push('fast'));
  const c = core.execute('file_open', 'open.o', caller).then(() => order.push('open'));
  await Promise.all([a, b, c]);
  t.same(order, ['open', 'slow', 'fast']);
});

t.test('error_log is bounded, says what it dropped, and clears', async (t) => {
  const { core } = setup();
  for (let i = 0; i < 8; i++) await core.execute('process_execution', `missing${i}.o`, caller).catch(() => {});
  t.equal(core.errorLog.list().length, 5);
  t.match(core.errorLog.text(), /^\(3 older entries dropped: the log keeps 5\)\n/);
  t.match(core.errorLog.text(), /missing7\.o/);
  t.notMatch(core.errorLog.text(), /missing2\.o/);
  core.errorLog.clear();
  t.equal(core.errorLog.text(), '');
});

t.test('non-UTF-8 lines are EINVAL and logged', async (t) => {
  const { core } = setup();
  await t.rejects(core.execute('process_execution', Buffer.from([0xff, 0xfe, 0x0a]), caller), { code: 'EINVAL', message: /UTF-8/ });
  t.equal(core.errorLog.list().length, 1);
});
