// The core's own logic (replace order, all or nothing, ordering, error_log)
// with a double for the kernel layer. This is not evidence that the kernel
// path works: the VM suite is.
import t from 'tap';
import { Krsi } from '../../lib/core/krsi.js';
import { KrsiError } from '../../lib/errors.js';
import type { AttachRequest, Credentials, LoadedProgramFacts, ObjectFacts, ObjectSource } from '../../lib/core/kernel-port.js';
import { FakeKernelBase, type FakeLink } from '../helpers/fake-kernel.js';
import type { ResolvedBehaviour } from '../../lib/core/catalogue.js';
import { companionOf } from '../../lib/core/companion.js';

const caller: Credentials = {
  pid: process.pid, tgid: process.pid, uid: 0, gid: 0, fsuid: 0, fsgid: 0, groups: [],
  capEff: 1n << 33n, inDaemonUserNs: true, comm: 'test',
};
const catalogue: ResolvedBehaviour[] = [
  { behaviour: 'process_execution', candidates: ['bprm_check_security'], hook: 'bprm_check_security', reason: '' },
  { behaviour: 'file_open', candidates: ['file_open'], hook: 'file_open', reason: '' },
  { behaviour: 'module_load', candidates: ['kernel_read_file'], hook: 'kernel_read_file', reason: '' },
  { behaviour: 'gone', candidates: ['nope'], hook: null, reason: 'none' },
];

/** Objects are named by path; their "bytes" are the path. */
class FakeKernel extends FakeKernelBase {
  objects = new Map<string, ObjectFacts>();
  delay = new Map<string, number>();
  failLoad = new Map<string, KrsiError>();
  /** The globals each load was given, in order. */
  loadGlobals: Record<string, string | number>[] = [];
  loadMaps: (Record<string, string> | undefined)[] = [];
  /** Paths that name a loaded program (a pin, the writer's fd): its id. */
  pinnedProgs = new Map<string, number>();
  /** Programs other loaders loaded, by id. */
  loaded = new Map<number, LoadedProgramFacts>();

  lsm(path: string, names: string[], hook: string | null = null, globals: string[] = []) {
    this.objects.set(path, {
      license: 'GPL',
      programs: names.map((name) => ({ name, section: hook ? `lsm/${hook}` : 'lsm', type: 'lsm', isLsm: true, hook, sleepable: false })),
      globals: globals.map((name) => ({ name, size: 256, section: '.rodata' })),
      maps: [],
    });
  }

  /** An object with LSM programs and companions (SEC: 'fexit/do_init_module', 'fmod_ret/x', …). */
  mixed(path: string, lsm: string[], others: [name: string, section: string][]) {
    this.lsm(path, lsm);
    for (const [name, section] of others) {
      this.objects.get(path)!.programs.push({ name, section, type: 'tracing', isLsm: false, hook: null, sleepable: false });
    }
  }

  protected factsOf(data: Buffer): ObjectFacts {
    return this.objects.get(data.toString())!;
  }

  async readObject(_writer: Credentials, path: string): Promise<ObjectSource> {
    const pinned = this.pinnedProgs.get(path);
    if (pinned !== undefined) return this.source(Buffer.alloc(0), path, { program: { id: pinned, source: `pinned:${path}` } });
    if (!this.objects.has(path)) throw new KrsiError('ENOENT', `open ${path}: no such file`);
    return this.source(Buffer.from(path), `/abs/${path}`);
  }

  protected async load(source: ObjectSource, req: AttachRequest): Promise<FakeLink[]> {
    const path = source.data.toString();
    this.loadGlobals.push({ ...req.globals });
    this.loadMaps.push(req.reuseMaps);
    const d = this.delay.get(path);
    if (d) await new Promise((r) => setTimeout(r, d));
    const fail = this.failLoad.get(path);
    if (fail) {
      this.events.push(`fail ${path}`);
      throw fail;
    }
    const out: FakeLink[] = [];
    for (const p of source.facts!.programs) {
      // a companion runs on the function its section names, in a trampoline of its own
      const on = companionOf(p) ?? req.hook;
      if ((await this.linksOnHook(on)) >= this.limit) {
        for (const a of out) this.put(a.id);
        throw new KrsiError('E2BIG', `attach program ${p.name} to ${on}: argument list too long`, { details: { program: p.name, hook: req.hook } });
      }
      const progId = this.nextId++;
      const link = { id: progId + 1000, progId, name: p.name, hook: on, refs: 1 };
      this.links.set(link.id, link);
      this.events.push(`attach ${p.name} ${progId} ${on}`);
      out.push(link);
    }
    return out;
  }

  async programInfo(id: number): Promise<LoadedProgramFacts> {
    const p = this.loaded.get(id);
    if (!p) throw new KrsiError('ENOENT', `prog info ${id}: no such file or directory`);
    return p;
  }
}

function setup(k = new FakeKernel(), cat = catalogue) {
  const core = new Krsi(k, cat, { errorLogSize: 5 });
  return { k, core };
}

t.test('files exist only for behaviours that resolved', async (t) => {
  const { core } = setup();
  t.same(core.behaviours(), ['process_execution', 'file_open', 'module_load']);
  t.match(core.hooksText(), /^process_execution\tbprm_check_security\tavailable\n/);
  t.match(core.hooksText(), /gone\t-\tunavailable: none\n/);
});

t.test('attach lists NAME, HOOK, ids and the object, tab-separated', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec'], null, ['target']);
  await core.execute('process_execution', 'a.o target=/tmp/v', caller);
  t.equal(await core.listing('process_execution'), 'deny_exec\tbprm_check_security\tprog_id=100\tlink_id=1100\tobject=/abs/a.o\tmode=enforce\n');
  t.equal(await core.listing('file_open'), '');
});

t.test('an object path with a tab, a newline or a terminal control is escaped: one line per program', async (t) => {
  const { k, core } = setup();
  const evil = 'x\ty\nforged\tbprm_check_security\tprog_id=1\x1b[2J\u202e.o';
  k.lsm(evil, ['deny_exec']);
  await core.execute('process_execution', `'${evil}'`, caller);
  const listing = await core.listing('process_execution');
  t.equal(listing.split('\n').length, 2, 'one line');
  t.equal(listing.split('\t').length, 6, 'six fields');
  t.match(listing, /object=\/abs\/x\\ty\\nforged\\tbprm_check_security\\tprog_id=1\\x1b\[2J\\u202e\.o\tmode=enforce\n$/, 'escaped');
  await core.execute('process_execution', `'/missing/${evil}'`, caller).catch(() => {});
  const log = core.errorLog.text();
  t.equal(log.split('\n').filter(Boolean).length, 1, 'error_log: one entry, one line');
  t.notMatch(log, /[\x1b\u202e]/, 'no control reaches error_log');
});

t.test('same-name replace attaches the new program before detaching the old', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec']);
  k.lsm('b.o', ['deny_exec']);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('process_execution', 'b.o', caller);
  t.same(k.events, ['attach deny_exec 100 bprm_check_security', 'attach deny_exec 101 bprm_check_security', 'detach 100']);
  t.match(await core.listing('process_execution'), /^deny_exec\t.*prog_id=101\t.*object=\/abs\/b.o\tmode=enforce\n$/);
});

t.test('a failed load changes nothing and leaves one error_log entry', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec']);
  k.lsm('bad.o', ['deny_exec', 'other']);
  await core.execute('process_execution', 'a.o', caller);
  const before = await core.listing('process_execution');
  k.failLoad.set('bad.o', new KrsiError('EACCES', 'load program other: invalid mem access', { verifierLog: ['0: r0 = *(u64 *)(r1 +0)', 'invalid mem access'] }));
  await t.rejects(core.execute('process_execution', 'bad.o', caller), { code: 'EACCES' });
  t.equal(await core.listing('process_execution'), before, 'what was attached stays attached');
  const log = core.errorLog.text();
  t.match(log, /process_execution: "bad.o": EACCES \(Permission denied\): load program other: invalid mem access/);
  t.match(log, /    verifier: invalid mem access\n$/);
});

t.test('objects the file cannot take are EINVAL before the kernel sees them', async (t) => {
  const { k, core } = setup();
  k.lsm('open.o', ['deny_open'], 'file_open');
  k.objects.set('sock.o', { license: 'GPL', programs: [{ name: 'f', section: 'socket', type: 'socket_filter', isLsm: false, hook: null, sleepable: false }], globals: [], maps: [] });
  k.objects.set('empty.o', { license: 'GPL', programs: [], globals: [], maps: [] });
  k.lsm('g.o', ['deny_exec'], null, ['target']);
  await t.rejects(core.execute('process_execution', 'open.o', caller), { code: 'EINVAL', message: /hook file_open .*write it to file_open instead/ });
  await t.rejects(core.execute('process_execution', 'sock.o', caller), { code: 'EINVAL', message: /program f is a socket_filter program/ });
  await t.rejects(core.execute('process_execution', 'empty.o', caller), { code: 'EINVAL', message: /no program/ });
  await t.rejects(core.execute('process_execution', 'g.o nope=1', caller), { code: 'EINVAL', message: /no global named nope .*target/ });
  await t.rejects(core.execute('process_execution', 'missing.o', caller), { code: 'ENOENT' });
  t.same(k.events, [], 'the kernel was never asked');
  t.equal(core.errorLog.list().length, 5, 'one entry per failed write');
  await core.execute('file_open', 'open.o', caller);
  t.match(await core.listing('file_open'), /^deny_open\tfile_open\t/);
});

t.test('companions: fentry/fexit programs go with an LSM program; alone, fmod_ret or sleepable they are EINVAL', async (t) => {
  const { k, core } = setup();
  k.mixed('alone.o', [], [['init_exit', 'fexit/do_init_module']]);
  k.mixed('fmodret.o', ['allow'], [['ret', 'fmod_ret/security_file_open']]);
  k.mixed('sleepy.o', ['allow'], [['s', 'fentry.s/do_init_module']]);
  k.mixed('bare.o', ['allow'], [['b', 'fentry']]);
  await t.rejects(core.execute('module_load', 'alone.o', caller), {
    code: 'EINVAL',
    message: /only fentry\/fexit programs \(init_exit\); companions attach with an LSM program for kernel_read_file \(SEC\("lsm"\)\), and this object has none/,
  });
  for (const [o, what] of [['fmodret.o', 'ret is a tracing program \\(SEC\\("fmod_ret/security_file_open"\\)\\)'], ['sleepy.o', 's is a tracing'], ['bare.o', 'b is a tracing']]) {
    await t.rejects(core.execute('module_load', o!, caller), {
      code: 'EINVAL', message: new RegExp(`program ${what}.*fentry/fexit companions \\(SEC\\("fentry/FUNC"\\), SEC\\("fexit/FUNC"\\)\\)`),
    }, `${o}: refused`);
  }
  t.same(k.events, [], 'the kernel was never asked');

  k.mixed('hide.o', ['hidden_module_load'], [['hidden_module_init', 'fexit/do_init_module'], ['entry', 'fentry/do_init_module']]);
  await core.execute('module_load', 'hide.o', caller);
  t.same(k.events, ['attach hidden_module_load 100 kernel_read_file', 'attach hidden_module_init 101 fexit:do_init_module', 'attach entry 102 fentry:do_init_module'], 'the kernel was asked for all three');
  t.equal(await core.listing('module_load'),
    'hidden_module_load\tkernel_read_file\tprog_id=100\tlink_id=1100\tobject=/abs/hide.o\tmode=enforce\n' +
    'hidden_module_init\tfexit:do_init_module\tprog_id=101\tlink_id=1101\tobject=/abs/hide.o\tmode=enforce\n' +
    'entry\tfentry:do_init_module\tprog_id=102\tlink_id=1102\tobject=/abs/hide.o\tmode=enforce\n', 'HOOK is where each link runs');
  await core.execute('module_load', '!entry', caller);
  t.match(await core.listing('module_load'), /^hidden_module_load\t.*\nhidden_module_init\t.*\n$/, '!NAME detaches a companion');
  const again = setup(k).core;
  t.equal(await again.adopt(), 2, 'a new daemon adopts the LSM program and its companion');
  t.equal(again.errorLog.text(), '', 'a companion on its own function is not a hook that changed');
  await again.execute('module_load', '!*', caller);
  t.equal(await again.listing('module_load'), '');
  t.equal(k.links.size, 0, 'all detached');
});

t.test('a companion takes no slot of the hook: E2BIG counts and measures LSM programs only', async (t) => {
  const { k, core } = setup();
  k.limit = 3;
  k.lsm('two.o', ['a', 'b']);
  k.mixed('hide.o', ['c'], [['c_init', 'fexit/do_init_module'], ['c_entry', 'fentry/do_init_module']]);
  k.mixed('big.o', ['x', 'y'], [['x_init', 'fexit/do_init_module']]);
  await core.execute('module_load', 'two.o', caller);
  await core.execute('module_load', 'hide.o', caller);
  t.equal((await core.registry.list('module_load')).length, 5, 'three LSM programs fill the hook; the companions fit beside them');
  await core.execute('module_load', '!c', caller);
  await t.rejects(core.execute('module_load', 'big.o', caller), {
    code: 'E2BIG',
    message: /hook kernel_read_file already has 2 programs attached \(krsifs: 2 of them\) and this object has 2; the kernel allows 3 per hook/,
  });
  t.equal((await core.registry.list('module_load')).length, 4, 'all or nothing');
  // a full function: said as the kernel's attach said it, not as the hook's count
  k.mixed('more.o', ['z'], [['z1', 'fexit/do_init_module'], ['z2', 'fexit/do_init_module'], ['z3', 'fexit/do_init_module']]);
  await t.rejects(core.execute('module_load', 'more.o', caller), {
    code: 'E2BIG', message: 'attach program z3 to fexit:do_init_module: argument list too long',
  });
  t.equal((await core.registry.list('module_load')).length, 4, 'all or nothing again');
});

t.test('!NAME detaches one, !* all, an unknown name is ENOENT', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['one', 'two']);
  k.lsm('c.o', ['three']);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('process_execution', 'c.o', caller);
  await core.execute('process_execution', '!two', caller);
  t.same((await core.registry.list('process_execution')).map((a) => a.name), ['one', 'three']);
  await t.rejects(core.execute('process_execution', '!two', caller), { code: 'ENOENT', message: /attached: one, three/ });
  await core.execute('process_execution', '!*', caller);
  t.equal(await core.listing('process_execution'), '');
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

t.test('the listing is the pins: one removed behind our back is gone, its program detached', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['one', 'two']);
  await core.execute('process_execution', 'a.o', caller);
  t.same([...k.dirs.get('process_execution')!.keys()].sort(), ['one', 'two'], 'a pin per program, by full name');
  t.equal(k.links.get(1100)!.refs, 1, 'the daemon holds no fd: the pin is the only reference');
  k.rm('process_execution', 'one');
  t.same(k.events.at(-1), 'detach 100');
  t.match(await core.listing('process_execution'), /^two\t/);
  await t.rejects(core.execute('process_execution', '!one', caller), { code: 'ENOENT', message: /attached: two/ });
});

t.test('a failed pin detaches everything new and keeps what was attached', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['keep']);
  k.lsm('b.o', ['keep', 'other']);
  await core.execute('process_execution', 'a.o', caller);
  k.failPin.add('other-new');
  await t.rejects(core.execute('process_execution', 'b.o', caller), { code: 'ENOSPC', message: /pin other-new/ });
  t.same([...k.links.keys()], [1100], 'only the first program is in the kernel');
  t.match(await core.listing('process_execution'), /^keep\t.*prog_id=100\t/);
  t.same([...k.dirs.get('process_execution')!.keys()], ['keep'], 'no temporary pin left');
});

t.test('a new daemon adopts the pins: same listing, same ids; !NAME and replace work on them', async (t) => {
  const k = new FakeKernel();
  const first = setup(k).core;
  k.lsm('a.o', ['deny_exec']);
  k.lsm('b.o', ['deny_exec']);
  k.lsm('c.o', ['other']);
  await first.execute('process_execution', 'a.o', caller);
  await first.execute('process_execution', 'c.o', caller);
  const before = await first.listing('process_execution');
  const { core } = setup(k);
  t.equal(await core.adopt(), 2);
  t.equal(await core.listing('process_execution'), before);
  t.equal(core.errorLog.text(), '', 'nothing to report');
  await core.execute('process_execution', 'b.o', caller);
  t.match(await core.listing('process_execution'), /^other\t.*\ndeny_exec\t.*prog_id=102\t.*object=\/abs\/b.o\tmode=enforce\n$/, 'replaced, in attach order');
  await core.execute('process_execution', '!other', caller);
  t.same([...k.links.keys()], [1102]);
});

t.test('start-up removes the temporary pins of an unfinished replace', async (t) => {
  const k = new FakeKernel();
  k.lsm('a.o', ['deny_exec']);
  // the daemon died while its addon pinned the new link: only its NAME-new pin holds it
  const pin = k.pin.bind(k);
  k.pin = async (id, b, n) => {
    await pin(id, b, n);
    return new Promise<never>(() => {});
  };
  void setup(k).core.execute('process_execution', 'a.o', caller);
  for (let i = 0; i < 50 && !k.dirs.get('process_execution')?.has('deny_exec-new'); i++) await new Promise((r) => setImmediate(r));
  k.pin = pin;
  // the dead daemon's fds are closed by the kernel
  k.links.get(1100)!.refs = 1;
  const { core } = setup(k);
  t.equal(await core.adopt(), 0);
  t.same(k.links.size, 0, 'its link is detached');
  t.same([...k.dirs.get('process_execution')!.keys()], []);
});

t.test('a crash between the renames of a 2-program replace: the next daemon has the whole new object, not half', async (t) => {
  const k = new FakeKernel();
  k.lsm('v1.o', ['a', 'b']);
  k.lsm('v2.o', ['a', 'b']);
  await setup(k).core.execute('process_execution', 'v1.o', caller);
  // the daemon dies right after the first program's final rename: renamePin never returns again
  const rename = k.renamePin.bind(k);
  let finals = 0;
  k.renamePin = async (b: string, from: string, to: string) => {
    if (!to.includes('-') && finals++ === 1) return new Promise<never>(() => {});
    return rename(b, from, to);
  };
  void setup(k).core.execute('process_execution', 'v2.o', caller);
  for (let i = 0; i < 50 && finals < 2; i++) await new Promise((r) => setImmediate(r));
  t.equal(finals, 2, 'killed between the two renames');
  k.renamePin = rename;
  const { core } = setup(k);
  await core.adopt();
  const listed = await core.listing('process_execution');
  t.match(listed, /^a\t.*object=\/abs\/v2.o\tmode=enforce\nb\t.*object=\/abs\/v2.o\tmode=enforce\n$/, 'both programs of v2, none of v1');
  t.same([...k.dirs.get('process_execution')!.keys()].sort(), ['a', 'b'], 'no temporary pin left');
  t.same([...k.links.values()].map((l) => l.progId).sort(), [102, 103], 'v1 is out of the kernel');
});

t.test('a crash while pinning a replace: the next daemon has the old object whole', async (t) => {
  const k = new FakeKernel();
  k.lsm('v1.o', ['a', 'b']);
  k.lsm('v2.o', ['a', 'b']);
  await setup(k).core.execute('process_execution', 'v1.o', caller);
  const pin = k.pin.bind(k);
  let pins = 0;
  k.pin = async (l: number, b: string, n: string) => (pins++ === 1 ? new Promise<never>(() => {}) : pin(l, b, n));
  void setup(k).core.execute('process_execution', 'v2.o', caller);
  for (let i = 0; i < 50 && pins < 2; i++) await new Promise((r) => setImmediate(r));
  t.equal(pins, 2, 'killed before the second pin');
  k.pin = pin;
  // the dead daemon's fds are closed by the kernel: the unpinned new link goes
  for (const l of [...k.links.values()]) if (l.progId === 103) k.links.delete(l.id);
  const { core } = setup(k);
  await core.adopt();
  t.match(await core.listing('process_execution'), /^a\t.*prog_id=100\t.*object=\/abs\/v1.o\tmode=enforce\nb\t.*prog_id=101\t.*object=\/abs\/v1.o\tmode=enforce\n$/, 'both programs of v1');
  t.same([...k.dirs.get('process_execution')!.keys()].sort(), ['a', 'b'], 'no temporary pin left');
});

t.test('a hook that changed between runs: listed under the hook it runs on, reported', async (t) => {
  const k = new FakeKernel();
  k.lsm('a.o', ['deny_exec']);
  await setup(k).core.execute('process_execution', 'a.o', caller);
  await setup(k).core.execute('file_open', 'a.o', caller);
  const edited: ResolvedBehaviour[] = [
    { behaviour: 'process_execution', candidates: ['bprm_creds_for_exec'], hook: 'bprm_creds_for_exec', reason: '' },
  ];
  const { core } = setup(k, edited);
  t.equal(await core.adopt(), 2);
  t.match(await core.listing('process_execution'), /^deny_exec\tbprm_check_security\t/);
  const log = core.errorLog.text();
  t.match(log, /process_execution: \(no line\): ESTALE .*pinned program deny_exec runs on hook bprm_check_security but the catalogue now maps the behaviour to bprm_creds_for_exec; it stays attached on bprm_check_security; detach it with '!deny_exec'/);
  t.match(log, /file_open: \(no line\): ESTALE .*file_open has no file here .*rm \/fake\/bpf\/krsi\/file_open\/deny_exec/);
  await core.execute('process_execution', '!deny_exec', caller);
  t.equal(await core.listing('process_execution'), '');
});

t.test('one program too many on a hook: E2BIG, and error_log says how many are attached', async (t) => {
  const { k, core } = setup();
  k.limit = 3;
  k.lsm('two.o', ['a', 'b']);
  k.lsm('one.o', ['c']);
  k.lsm('big.o', ['x', 'y']);
  await core.execute('process_execution', 'two.o', caller);
  await core.execute('process_execution', 'one.o', caller);
  await t.rejects(core.execute('process_execution', 'big.o', caller), {
    code: 'E2BIG',
    message: /hook bprm_check_security already has 3 programs attached \(krsifs: 3 of them\) and this object has 2; the kernel allows 3 per hook/,
  });
  await core.execute('process_execution', '!c', caller);
  await t.rejects(core.execute('process_execution', 'big.o', caller), { code: 'E2BIG', message: /already has 2 programs attached .*allows 3 per hook/ });
  t.equal((await core.registry.list('process_execution')).length, 2, 'all or nothing');
  t.match(core.errorLog.text(), /E2BIG \(Argument list too long\): attach program y .*already has 2/);
});

t.test('--ephemeral: detachEverything removes every pin', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['one', 'two']);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('file_open', 'a.o', caller);
  t.equal(await core.detachEverything(), 4);
  t.equal(k.links.size, 0);
  t.equal(await core.listing('process_execution'), '');
});

t.test('loaded programs: id:N and pins attach with the kernel name, replace and detach by it', async (t) => {
  const { k, core } = setup();
  k.lsm('a.o', ['deny_exec']);
  k.loaded.set(7, { name: 'deny_exec', type: 'lsm', hook: 'bprm_check_security' });
  k.loaded.set(8, { name: 'other', type: 'lsm', hook: 'bprm_check_security' });
  k.loaded.set(9, { name: 'opener', type: 'lsm', hook: 'file_open' });
  k.loaded.set(10, { name: 'count_packets', type: 'socket_filter', hook: null });
  k.loaded.set(11, { name: 'my.prog', type: 'lsm', hook: 'bprm_check_security' });
  k.loaded.set(12, { name: '', type: 'lsm', hook: 'bprm_check_security' });
  k.pinnedProgs.set('/sys/fs/bpf/other', 8);
  await core.execute('process_execution', 'a.o', caller);
  await core.execute('process_execution', 'id:7', caller);
  t.same(k.events, ['attach deny_exec 100 bprm_check_security', 'attach deny_exec 7 bprm_check_security', 'detach 100'],
    'same name: the loaded program replaces the object\'s, new attached before old detached');
  t.match(await core.listing('process_execution'), /^deny_exec\tbprm_check_security\tprog_id=7\tlink_id=\d+\tobject=id:7\tmode=enforce\n$/, 'listed with object=id:7');
  t.same([...k.dirs.get('process_execution')!.keys()], ['deny_exec'], 'only the final pin is left');
  await core.execute('process_execution', '/sys/fs/bpf/other', caller);
  t.match(await core.listing('process_execution'), /\nother\tbprm_check_security\tprog_id=8\t.*object=pinned:\/sys\/fs\/bpf\/other\tmode=enforce\n$/, 'a pin: object=pinned:PATH');
  await core.execute('process_execution', 'id:11', caller);
  await core.execute('process_execution', 'id:12', caller);
  t.match(await core.listing('process_execution'), /\nmy_prog\t.*prog_id=11\t.*\nprog_12\t.*prog_id=12\t/, 'a dot becomes _, no name becomes prog_ID');
  await core.execute('process_execution', '!deny_exec', caller);
  await core.execute('process_execution', '!my_prog', caller);
  t.notMatch(await core.listing('process_execution'), /deny_exec|my_prog/, '!NAME detaches them');
  t.ok(k.events.includes('detach 7'), 'and the kernel lets the link go');

  await t.rejects(core.execute('process_execution', 'id:9', caller), {
    code: 'EINVAL', message: 'attach id:9: program 9 (opener) was loaded for hook file_open but process_execution attaches to bprm_check_security: write it to file_open instead',
  }, 'another hook: EINVAL naming both');
  await t.rejects(core.execute('process_execution', 'id:10', caller), {
    code: 'EINVAL', message: 'attach id:10: program 10 (count_packets) is a socket_filter program; a behaviour file takes only LSM programs',
  }, 'not LSM: EINVAL');
  await t.rejects(core.execute('process_execution', 'id:99', caller), { code: 'ENOENT', message: 'attach id:99: no loaded program has id 99' }, 'no such id: ENOENT');
  await t.rejects(core.execute('process_execution', 'id:8 target=/x', caller), { code: 'EINVAL', message: /target=…: a loaded program's globals/ }, 'KEY=VALUE on a loaded program: EINVAL');
  for (const bad of ['id:', 'id:0', 'id:x', 'id:-1', 'id:99999999999']) {
    await t.rejects(core.execute('process_execution', bad, caller), { code: 'EINVAL', message: /is not id:N/ }, `${bad}: EINVAL`);
  }
});

t.test('mode=monitor: krsi_monitor=1 at load, the mode listed and recorded; enforce sets nothing', async (t) => {
  const { k, core } = setup();
  k.lsm('v.o', ['deny_exec'], null, ['target', 'krsi_monitor']);
  await core.execute('process_execution', 'v.o target=/tmp/v mode=monitor', caller);
  t.same(k.loadGlobals.at(-1), { target: '/tmp/v', krsi_monitor: '1' }, 'krsifs sets krsi_monitor itself');
  t.match(await core.listing('process_execution'), /^deny_exec\tbprm_check_security\tprog_id=100\tlink_id=1100\tobject=\/abs\/v\.o\tmode=monitor\n$/);
  await core.execute('process_execution', 'v.o target=/tmp/v', caller);
  t.same(k.loadGlobals.at(-1), { target: '/tmp/v' }, 'enforce: the object\'s own default (0)');
  t.match(await core.listing('process_execution'), /\tobject=\/abs\/v\.o\tmode=enforce\n$/, 'replaced by an enforcing one');
  t.same([...k.records.values()].map((r) => r.mode), ['enforce'], 'the replaced link\'s record is gone');
});

t.test('mode=monitor on an object without krsi_monitor (no krsi_verdict.h) is EINVAL: nothing loaded, one error_log entry', async (t) => {
  const { k, core } = setup();
  k.lsm('foreign.o', ['interop_exec'], 'bprm_check_security', ['target']);
  k.objects.get('foreign.o')!.globals.push({ name: 'krsi_monitor', size: 4, section: '.bss' });
  await t.rejects(core.execute('process_execution', 'foreign.o mode=monitor', caller), {
    code: 'EINVAL',
    message: 'attach /abs/foreign.o: cannot honour mode=monitor: it does not include krsi_verdict.h (no krsi_monitor global); it would refuse for real',
  }, 'a krsi_monitor outside .rodata is not the header\'s');
  t.same(k.events, [], 'nothing loaded');
  t.equal(await core.listing('process_execution'), '');
  t.match(core.errorLog.text(), /foreign\.o mode=monitor.*EINVAL.*cannot honour mode=monitor/);
  await core.execute('process_execution', 'foreign.o mode=enforce', caller);
  t.match(await core.listing('process_execution'), /\tmode=enforce\n$/, 'mode=enforce is what it does anyway: accepted');
});

t.test('a loaded program cannot honour mode=monitor: EINVAL; mode=enforce is accepted', async (t) => {
  const { k, core } = setup();
  k.loaded.set(7, { name: 'deny_exec', type: 'lsm', hook: 'bprm_check_security' });
  await t.rejects(core.execute('process_execution', 'id:7 mode=monitor', caller), {
    code: 'EINVAL', message: /^attach id:7: cannot honour mode=monitor: a program another loader loaded/,
  });
  t.same(k.events, [], 'nothing attached');
  await core.execute('process_execution', 'id:7 mode=enforce', caller);
  t.match(await core.listing('process_execution'), /\tobject=id:7\tmode=enforce\n$/);
});

t.test('KEY=VALUE for a global krsifs sets is EINVAL before anything is read', async (t) => {
  const { k, core } = setup();
  k.lsm('v.o', ['deny_exec'], null, ['krsi_monitor']);
  await t.rejects(core.execute('process_execution', 'v.o krsi_monitor=1', caller), { code: 'EINVAL', message: /krsi_monitor: krsifs sets it itself.*mode=/ });
  t.same(k.loadGlobals, []);
  t.match(core.errorLog.text(), /v\.o krsi_monitor=1/);
});

t.test('observer: attached before the first program, kept for the second, gone with the last', async (t) => {
  const { k, core } = setup();
  k.observe = true;
  k.lsm('a.o', ['one']);
  k.lsm('b.o', ['two']);
  await core.execute('process_execution', 'a.o', caller);
  t.same(k.events.slice(0, 2), ['observe process_execution', 'attach one 101 bprm_check_security'], 'the observer first: the first denial is seen');
  await core.execute('process_execution', 'b.o', caller);
  t.equal(k.events.filter((e) => e.startsWith('observe')).length, 1, 'one observer per behaviour');
  k.counters.set('process_execution', { denied: 4, monitored: 1 });
  t.equal(await core.statsText(), 'process_execution\tbprm_check_security\tprograms=2\tdenied=4\tmonitored=1\n');
  await core.execute('process_execution', '!one', caller);
  t.ok(k.observers.has('process_execution'), 'a program left: the observer stays');
  await core.execute('process_execution', '!*', caller);
  t.notOk(k.observers.has('process_execution'), 'the last one went: the observer too');
  t.notOk(k.counters.has('process_execution'), 'and its counters: they run since the first attach');
  t.equal(await core.statsText(), '', 'no line without programs');
});

t.test('observer: a failed first attach leaves none; one that cannot attach is said and the program still goes in', async (t) => {
  const { k, core } = setup();
  k.observe = true;
  k.lsm('bad.o', ['bad']);
  k.failLoad.set('bad.o', new KrsiError('EINVAL', 'load program bad: refused'));
  await t.rejects(core.execute('process_execution', 'bad.o', caller), { code: 'EINVAL' });
  t.equal(k.observers.size, 0, 'no program: no observer');

  k.lsm('one.o', ['one']);
  k.limit = 1; // room for the program or the observer: the program wins
  await core.execute('process_execution', 'one.o', caller);
  t.equal((await core.registry.list('process_execution')).length, 1, 'enforcement first');
  t.equal(k.observers.size, 0);
  t.match(core.errorLog.text(), /process_execution: denials on bprm_check_security are not reported or counted .*observer takes a slot of its own/);
});

t.test('observer: a read that finds the behaviour empty settles it once, not at every read', async (t) => {
  const { k, core } = setup();
  k.observe = true;
  k.lsm('a.o', ['one']);
  let detachCalls = 0;
  const detachObserver = k.detachObserver.bind(k);
  k.detachObserver = (b: string) => {
    detachCalls++;
    return detachObserver(b);
  };
  const idle = () => core.execute('process_execution', '', caller); // the behaviour's queue, drained
  for (let i = 0; i < 5; i++) t.equal(await core.listing('process_execution'), '');
  await idle();
  t.equal(detachCalls, 1, 'five reads of an empty file: one settle');

  await core.execute('process_execution', 'a.o', caller);
  t.ok(k.observers.has('process_execution'));
  k.rm('process_execution', 'one'); // behind our back, with no read in between
  for (let i = 0; i < 3; i++) t.equal(await core.listing('process_execution'), '');
  await idle();
  t.notOk(k.observers.has('process_execution'), 'after an attach, the first empty read settles again: the observer goes');
  t.equal(detachCalls, 2, 'and only that one');

  await core.execute('process_execution', 'a.o', caller);
  t.match(await core.listing('process_execution'), /^one\t/);
  k.rm('process_execution', 'one');
  t.equal(await core.listing('process_execution'), '');
  await idle();
  t.notOk(k.observers.has('process_execution'), 'a read that saw it full, then one that sees it empty: settled');
  t.equal(detachCalls, 3);
});

t.test('observer: adopted at start-up, added where missing, removed where no program is left', async (t) => {
  const k = new FakeKernel();
  k.observe = true;
  k.lsm('a.o', ['one']);
  const first = setup(k).core;
  await first.execute('process_execution', 'a.o', caller);
  await first.execute('file_open', 'a.o', caller);
  // behind our back: the observer of process_execution and every pin of file_open go
  await k.detachObserver('process_execution');
  k.rm('file_open', 'one');
  const next = setup(k).core;
  await next.adopt();
  t.ok(k.observers.has('process_execution'), 'a behaviour with pins and no observer gets one');
  t.notOk(k.observers.has('file_open'), 'an observer without pins goes');
});

t.test('capacity: the E2BIG message counts the observer', async (t) => {
  const { k, core } = setup();
  k.observe = true;
  k.limit = 3;
  k.lsm('two.o', ['a', 'b']);
  k.lsm('one.o', ['c']);
  await core.execute('process_execution', 'two.o', caller);
  await t.rejects(core.execute('process_execution', 'one.o', caller), {
    code: 'E2BIG',
    message: /already has 3 programs attached \(krsifs: 3 of them, its denial observer included\)/,
  });
});

t.test('loadOptions: the daemon\'s globals and shared maps reach the load, from the facts the core read once', async (t) => {
  const k = new FakeKernel();
  k.lsm('ev.o', ['ev'], null, ['target', 'krsi_behaviour']);
  k.objects.get('ev.o')!.maps.push({ name: 'krsi_events' });
  const seen: string[] = [];
  const core = new Krsi(k, catalogue, {
    loadOptions: (behaviour, hook, facts) => {
      seen.push(`${behaviour} ${hook} ${facts.maps.map((m) => m.name).join(',')}`);
      return { globals: { krsi_behaviour: behaviour }, reuseMaps: { krsi_events: '/pins/events' } };
    },
  });
  await core.execute('process_execution', 'ev.o target=/x', caller);
  t.same(seen, ['process_execution bprm_check_security krsi_events'], 'asked once, with the object\'s facts');
  t.same(k.loadGlobals.at(-1), { target: '/x', krsi_behaviour: 'process_execution' }, 'the line\'s globals and the daemon\'s');
  t.same(k.loadMaps.at(-1), { krsi_events: '/pins/events' }, 'the shared maps');
});

t.test('attachRefusal: every attach is refused with its error, objects and loaded programs alike, after the line\'s own checks', async (t) => {
  const k = new FakeKernel();
  k.lsm('a.o', ['one']);
  k.loaded.set(7, { name: 'deny_exec', type: 'lsm', hook: 'bprm_check_security' });
  const core = new Krsi(k, catalogue, { attachRefusal: (hook) => new KrsiError('EOPNOTSUPP', `the bpf LSM is not active: ${hook} would never run it`) });
  await t.rejects(core.execute('process_execution', 'a.o', caller), { code: 'EOPNOTSUPP', message: /bprm_check_security would never run it/ });
  await t.rejects(core.execute('process_execution', 'id:7', caller), { code: 'EOPNOTSUPP' }, 'a loaded program too');
  await t.rejects(core.execute('process_execution', 'a.o nosuch=1', caller), { code: 'EINVAL' }, 'a bad line gets its own error first');
  t.same(k.events, [], 'nothing was loaded or attached');
  t.equal(await core.listing('process_execution'), '');
});
