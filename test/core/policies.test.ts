// The policy directory's logic: parsing (real files in a temporary
// directory, real trust checks), and reconciling with the real core (Krsi)
// over a double of the kernel whose objects are bytes in memory. This proves
// the decisions (keep, replace, attach, fail, prune, skip) and what is
// recorded; that the kernel really enforces them is the VM suite's to prove
// (test/vm/boot-policies.test.ts).
import t from 'tap';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Krsi } from '../../lib/core/krsi.js';
import { KrsiError } from '../../lib/errors.js';
import { parseLine } from '../../lib/core/grammar.js';
import { digestOf, formatDigest, parseDigest } from '../../lib/core/digest.js';
import type { AttachRequest, Credentials, ObjectFacts, ObjectSource, PinnedLink } from '../../lib/core/kernel-port.js';
import { FakeKernelBase, type FakeLink } from '../helpers/fake-kernel.js';
import type { ResolvedBehaviour } from '../../lib/core/catalogue.js';
import { lineOf, parseDeclaration, readPolicyDir, token, type BehaviourNames } from '../../lib/policies/parse.js';
import { reconcile, stateOf } from '../../lib/policies/reconcile.js';
import { checkTrusted } from '../../lib/policies/trust.js';
import { silentLogger } from '../../lib/log.js';

const root: Credentials = {
  pid: process.pid, tgid: process.pid, uid: 0, gid: 0, fsuid: 0, fsgid: 0, groups: [],
  capEff: 1n << 33n, inDaemonUserNs: true, comm: 'krsifs',
};
const catalogue: ResolvedBehaviour[] = [
  { behaviour: 'process_execution', candidates: ['bprm_check_security'], hook: 'bprm_check_security', reason: '' },
  { behaviour: 'file_open', candidates: ['file_open'], hook: 'file_open', reason: '' },
  { behaviour: 'gone', candidates: ['nope'], hook: null, reason: 'no hook nope in this kernel' },
];
const names: BehaviourNames = {
  has: (b) => b === 'process_execution' || b === 'file_open',
  why: (b) => (b === 'gone' ? 'no hook nope in this kernel' : 'not in the catalogue'),
};

/**
 * Objects are files of this double: path -> bytes (their "program names" are
 * the bytes' first line, comma-separated).
 */
class Kernel extends FakeKernelBase {
  files = new Map<string, string>();
  loads: string[] = [];
  refuse = new Map<string, KrsiError>();

  protected factsOf(data: Buffer): ObjectFacts {
    const progs = data.toString().split('\n')[0]!.split(',');
    const globals = [{ name: 'target', size: 256, section: '.rodata' }, { name: 'krsi_monitor', size: 4, section: '.rodata' }];
    return { license: 'GPL', globals, maps: [], programs: progs.map((name) => ({ name, section: 'lsm', type: 'lsm', isLsm: true, hook: null, sleepable: false })) };
  }

  async readObject(_w: Credentials, p: string): Promise<ObjectSource> {
    const f = this.files.get(p);
    if (f === undefined) throw new KrsiError('ENOENT', `open ${p}: No such file or directory`);
    return this.source(Buffer.from(f), p);
  }

  // programs other loaders loaded: not used by the policy directory's tests
  async programInfo(id: number): Promise<never> {
    throw new KrsiError('ENOENT', `prog info ${id}: no such file or directory`);
  }

  protected async load(source: ObjectSource, req: AttachRequest): Promise<FakeLink[]> {
    const text = source.data.toString();
    for (const [k, e] of this.refuse) if (text.includes(k)) throw e;
    this.loads.push(text.split('\n')[0]!);
    return source.facts!.programs.map((p) => {
      const progId = this.nextId++;
      const link = { id: progId + 1000, progId, name: p.name, hook: req.hook, refs: 1 };
      this.links.set(link.id, link);
      return link;
    });
  }

  /** link id -> its digest record */
  get digests(): Map<number, string | undefined> {
    return new Map([...this.records].map(([id, r]) => [id, r.digest]));
  }

  /** program name -> link id, in one behaviour */
  ids(b: string): Record<string, number> {
    return Object.fromEntries([...(this.dirs.get(b) ?? new Map<string, number>()).entries()]);
  }
}

let tmp: string;
t.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'krsifs-policies-'));
});
t.teardown(() => rm(tmp, { recursive: true, force: true }));

async function policyDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmp, 'd-'));
  await chmod(dir, 0o755);
  for (const [n, text] of Object.entries(files)) await writeFile(path.join(dir, n), text, { mode: 0o644 });
  return dir;
}

function setup() {
  const k = new Kernel();
  const core = new Krsi(k, catalogue);
  const run = async (dir: string, prune = false) =>
    reconcile(await readPolicyDir(dir, names), { core, kernel: k, credentials: root, log: silentLogger, trust: async () => {} }, { prune });
  return { k, core, run };
}

t.test('a declaration: BEHAVIOUR then the line one would write; relative paths against the .conf', async (t) => {
  const d = parseDeclaration('/etc/krsifs/policies.d/10-x.conf', 3, 'process_execution ../objs/deny_exec.o target=/opt/a', names);
  t.match(d, { behaviour: 'process_execution', path: '/etc/krsifs/objs/deny_exec.o', globals: { target: '/opt/a' }, lineNo: 3 });
  const abs = parseDeclaration('/p/a.conf', 1, "file_open '/o b/x.o' target=\"/a b\"", names);
  t.match(abs, { path: '/o b/x.o', globals: { target: '/a b' } });
  const problems = [
    ['process_execution !deny_exec', /EINVAL|only PATH \[KEY=VALUE \.\.\.\] lines belong in a policy file/],
    ['process_execution !*', /only PATH/],
    ['process_execution', /needs an object/],
    ['frob x.o', /no behaviour file named frob here \(not in the catalogue\)/],
    ['gone x.o', /no behaviour file named gone here \(no hook nope in this kernel\)/],
    ['file_open x.o target', /"target" is not KEY=VALUE/],
    ['file_open x.o # a comment', /"#" is not KEY=VALUE/],
  ] as const;
  for (const [line, msg] of problems) {
    const p = parseDeclaration('/p/a.conf', 7, line, names);
    t.ok('error' in p, line);
    if ('error' in p) {
      t.match(p.error.message, /^\/p\/a\.conf:7: /, `${line}: names file and line`);
      t.match(p.error.message, msg);
    }
  }
});

t.test('lineOf reads back through the write grammar whatever the path and values hold', async (t) => {
  for (const p of ['/plain/x.o', '/with space/x.o', "/q'uote/x.o", '/d"q/x.o', '/back\\slash/x.o', '/!bang.o', '/#hash.o']) {
    const d = { conf: '/c', lineNo: 1, text: '', behaviour: 'file_open', path: p, globals: { target: 'a b"c\'d\\e', x: '' }, mode: 'monitor' as const };
    t.same(parseLine(lineOf(d)), { kind: 'attach', path: p, globals: d.globals, mode: 'monitor' }, p);
    t.same(parseLine(lineOf({ ...d, mode: 'enforce' })), { kind: 'attach', path: p, globals: d.globals, mode: 'enforce' }, p);
  }
  t.equal(token('plain'), 'plain');
});

t.test('the directory: *.conf only, byte order, comments and blanks skipped, each line numbered', async (t) => {
  const dir = await policyDir({
    '20-b.conf': 'file_open /o/b.o\n',
    '10-a.conf': '# header\n\nprocess_execution /o/a.o target=/x\n  # indented comment\nfrob /o/z.o\n',
    'B-upper.conf': 'file_open /o/c.o\n',
    'notes.txt': 'process_execution /o/never.o\n',
    '.hidden.conf': 'process_execution /o/never2.o\n',
    '10-a.conf.dpkg-old': 'process_execution /o/never3.o\n',
  });
  const set = await readPolicyDir(dir, names);
  t.same(set.files.map((f) => path.basename(f)), ['10-a.conf', '20-b.conf', 'B-upper.conf']);
  t.same(set.declarations.map((d) => [path.basename(d.conf), d.lineNo, d.path]), [
    ['10-a.conf', 3, '/o/a.o'], ['20-b.conf', 1, '/o/b.o'], ['B-upper.conf', 1, '/o/c.o'],
  ]);
  t.same(set.problems.map((p) => [path.basename(p.conf), p.lineNo, p.text]), [['10-a.conf', 5, 'frob /o/z.o']]);
});

t.test('trust: what others could change is refused (EPERM, naming it); a missing directory is a problem', async (t) => {
  const dir = await policyDir({ 'ok.conf': 'file_open /o/a.o\n', 'gw.conf': 'file_open /o/b.o\n' });
  await chmod(path.join(dir, 'gw.conf'), 0o664);
  const set = await readPolicyDir(dir, names);
  t.same(set.declarations.map((d) => d.path), ['/o/a.o']);
  t.equal(set.problems.length, 1);
  t.equal(set.problems[0]!.error.code, 'EPERM');
  t.match(set.problems[0]!.error.message, /policy file .*gw\.conf is writable by its group \(mode 0664\)/);

  await chmod(dir, 0o777);
  const open = await readPolicyDir(dir, names);
  t.same(open.declarations, [], 'a world-writable directory declares nothing');
  t.match(open.problems[0]!.error.message, /policy directory .* is writable by its group and others \(mode 0777\)/);
  await chmod(dir, 0o755);

  // an object reached through a world-writable directory, even by a symlink from a good one
  const bad = path.join(tmp, 'open-dir');
  await mkdir(bad, { mode: 0o777 });
  await chmod(bad, 0o777);
  await writeFile(path.join(bad, 'x.o'), 'x', { mode: 0o644 });
  await symlink(path.join(bad, 'x.o'), path.join(dir, 'link.o'));
  await t.rejects(checkTrusted(path.join(dir, 'link.o'), 'object'), { code: 'EPERM', message: /object .*open-dir \(above .*link\.o\) is writable by its group and others/ });
  // a sticky world-writable directory (like /tmp) above a root-owned file is fine
  await writeFile(path.join(dir, 'y.o'), 'y', { mode: 0o644 });
  await t.resolves(checkTrusted(path.join(dir, 'y.o'), 'object'));
  await t.rejects(checkTrusted(path.join(dir, 'nope.o'), 'object'), { code: 'ENOENT', message: /object .*nope\.o: No such file or directory/ });

  const missing = await readPolicyDir(path.join(tmp, 'no-such-dir'), names);
  t.same(missing.declarations, []);
  t.equal(missing.problems[0]!.error.code, 'ENOENT');
});

t.test('reconcile: attach what is missing, keep what is the same, replace what changed; ids say so', async (t) => {
  const { k, core, run } = setup();
  k.files.set('/o/a.o', 'deny_a\nv1');
  k.files.set('/o/b.o', 'deny_b\nv1');
  const dir = await policyDir({ '10.conf': 'process_execution /o/a.o target=/x\nfile_open /o/b.o\n' });
  const first = await run(dir);
  t.same(first.results.map((r) => r.outcome), ['attached', 'attached']);
  t.equal(first.failures, 0);
  const ids = { ...k.ids('process_execution'), ...k.ids('file_open') };
  t.equal(k.digests.get(ids.deny_a!), formatDigest(await digestOf(Buffer.from('deny_a\nv1'), { target: '/x' })), 'the digest of bytes and settings is recorded');

  const again = await run(dir);
  t.same(again.results.map((r) => r.outcome), ['kept', 'kept'], 'a second reconcile (a restart) keeps both');
  t.same({ ...k.ids('process_execution'), ...k.ids('file_open') }, ids, 'same link ids');
  t.same(k.loads, ['deny_a', 'deny_b'], 'nothing loaded again');

  await writeFile(path.join(dir, '10.conf'), 'process_execution /o/a.o target=/y\nfile_open /o/b.o\n');
  const settings = await run(dir);
  t.same(settings.results.map((r) => r.outcome), ['replaced', 'kept'], 'other settings: replaced');
  t.not(k.ids('process_execution').deny_a, ids.deny_a);

  k.files.set('/o/b.o', 'deny_b\nv2');
  const bytes = await run(dir);
  t.same(bytes.results.map((r) => r.outcome), ['kept', 'replaced'], 'other bytes: replaced');

  // a program with no digest record (attached by an older krsifs) is replaced once, then kept
  delete k.records.get(k.ids('file_open').deny_b!)!.digest;
  t.same((await run(dir)).results.map((r) => r.outcome), ['kept', 'replaced']);
  t.same((await run(dir)).results.map((r) => r.outcome), ['kept', 'kept']);
  t.equal(core.errorLog.list().length, 0);
});

t.test('reconcile: a failing line is recorded with its file and line; the others apply', async (t) => {
  const { k, core, run } = setup();
  k.files.set('/o/a.o', 'deny_a');
  k.files.set('/o/v.o', 'deny_v\nverifier-food');
  k.files.set('/o/dup.o', 'deny_a,deny_d');
  k.refuse.set('verifier-food', new KrsiError('EACCES', 'load program deny_v: R0 invalid mem access', { verifierLog: ['0: r0 = 1', 'R0 invalid mem access'] }));
  const dir = await policyDir({
    '10.conf': 'process_execution /o/missing.o\nprocess_execution /o/a.o\nprocess_execution /o/v.o\nfrob /o/a.o\nprocess_execution /o/dup.o\n',
  });
  const r = await run(dir);
  t.same(r.results.map((x) => x.outcome), ['failed', 'attached', 'failed', 'failed']);
  t.equal(r.failures, 4, 'three declarations and one problem');
  t.same(Object.keys(k.ids('process_execution')), ['deny_a']);
  const log = core.errorLog.text();
  const conf = path.join(dir, '10.conf');
  t.match(log, `process_execution: "process_execution /o/missing.o": ENOENT (No such file or directory): ${conf}:1: `);
  t.match(log, `process_execution: "process_execution /o/v.o": EACCES (Permission denied): ${conf}:3: load program deny_v`);
  t.match(log, '    verifier: R0 invalid mem access', 'with the verifier log');
  t.match(log, `policies: "frob /o/a.o": EINVAL (Invalid argument): ${conf}:4: no behaviour file named frob`);
  t.match(log, `EEXIST (File exists): ${conf}:5: program deny_a on process_execution is already declared by ${conf}:2`);
  t.match(r.results[0]!.error, { code: 'ENOENT' });
});

t.test('prune: detaches what no line declares; never what a broken line might declare', async (t) => {
  const { k, core, run } = setup();
  k.files.set('/o/a.o', 'deny_a');
  k.files.set('/o/h.o', 'by_hand');
  k.files.set('/o/f.o', 'open_hand');
  await core.execute('process_execution', '/o/h.o', root);
  await core.execute('file_open', '/o/f.o', root);
  const dir = await policyDir({ '10.conf': 'process_execution /o/a.o\n' });

  const plain = await run(dir);
  t.same(plain.pruned, [], 'without --prune, programs attached by hand stay');
  t.same(Object.keys(k.ids('process_execution')).sort(), ['by_hand', 'deny_a']);

  // a line whose object cannot be read: its behaviour is left alone, the others pruned
  await writeFile(path.join(dir, '20.conf'), 'process_execution /o/gone.o\n');
  const partial = await run(dir, true);
  t.same(partial.pruned.map((p) => p.name), ['open_hand']);
  t.same(partial.pruneSkipped.map((s) => s.behaviour), ['process_execution']);
  t.ok(k.ids('process_execution').by_hand, 'kept: gone.o might have been it');

  // a line whose behaviour is unknown (a typo?): nothing is pruned anywhere
  await writeFile(path.join(dir, '20.conf'), 'proces_execution /o/a.o\n');
  await core.execute('file_open', '/o/f.o', root);
  const typo = await run(dir, true);
  t.same(typo.pruned, []);
  t.same(typo.pruneSkipped.map((s) => s.behaviour), ['*']);

  await rm(path.join(dir, '20.conf'));
  const id = k.ids('process_execution').deny_a;
  const clean = await run(dir, true);
  t.same(clean.pruned.map((p) => p.name).sort(), ['by_hand', 'open_hand']);
  t.same(k.ids('process_execution'), { deny_a: id }, 'the declared program kept its link');
  t.same(k.ids('file_open'), {});
});

t.test('digest records: a changed format or garbage counts as changed', async (t) => {
  const d = await digestOf(Buffer.from('x'), { b: '2', a: '1' });
  t.same(parseDigest(formatDigest(d)), d);
  // hashed in slices (the event loop serves other requests between them): still the sha256 of the whole bytes
  const big = Buffer.alloc(200_000 + 17, 0);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 9)) & 0xff;
  t.equal((await digestOf(big, {})).object, createHash('sha256').update(big).digest('hex'), 'an object of several slices: the sha256 of all its bytes');
  t.equal((await digestOf(Buffer.alloc(0), {})).object, createHash('sha256').digest('hex'), 'no bytes');
  t.same(await digestOf(Buffer.from('x'), { a: '1', b: '2' }), d, 'key order does not matter');
  t.not((await digestOf(Buffer.from('x'), { a: '1', b: '3' })).settings, d.settings);
  t.same(await digestOf(Buffer.from('x'), { a: '1', b: '2' }, 'enforce'), d, 'enforce is the digest of a line without mode= (links attached before modes existed)');
  t.not((await digestOf(Buffer.from('x'), { a: '1', b: '2' }, 'monitor')).settings, d.settings, 'the mode is a setting');
  t.equal(parseDigest('object=sha256:zz settings=sha256:00'), null);
  t.equal(parseDigest(''), null);
});

t.test('a declared object with a companion is in force: the companion runs on its own function, not the hook', async (t) => {
  const digest = await digestOf(Buffer.from('hide'), {}, 'enforce');
  const pin = (name: string, linkId: number, hook: string): PinnedLink => ({ name, linkId, progId: linkId - 1000, hook, object: '/abs/hide.o', mode: 'enforce' });
  const kernel = { digestOf: async () => formatDigest(digest) };
  const plan = { digest, programs: ['hidden_module_load', 'hidden_module_init'], mode: 'enforce' as const };
  const pins = [pin('hidden_module_load', 1001, 'kernel_read_file'), pin('hidden_module_init', 1002, 'fexit:do_init_module')];
  t.same(await stateOf(plan, 'kernel_read_file', pins, kernel), { inForce: true, links: pins });
  const moved = [pin('hidden_module_load', 1001, 'kernel_module_from_file'), pins[1]!];
  t.match(await stateOf(plan, 'kernel_read_file', moved, kernel), { inForce: false, why: 'hidden_module_load runs on hook kernel_module_from_file, not kernel_read_file' }, 'the LSM program still must be on the hook');
});

t.test('reconcile: mode= is part of a declaration; a link in the other mode is replaced, not kept', async (t) => {
  const { k, core, run } = setup();
  k.files.set('/o/a.o', 'deny_a\nv1');
  const dir = await policyDir({ '10.conf': 'process_execution /o/a.o target=/x mode=monitor\n' });
  t.same((await run(dir)).results.map((r) => r.outcome), ['attached']);
  t.match(await core.listing('process_execution'), /^deny_a\t.*\tmode=monitor\n$/);
  t.same((await run(dir)).results.map((r) => r.outcome), ['kept'], 'same mode: kept');
  await writeFile(path.join(dir, '10.conf'), 'process_execution /o/a.o target=/x\n');
  t.same((await run(dir)).results.map((r) => r.outcome), ['replaced'], 'enforce now: replaced');
  t.match(await core.listing('process_execution'), /\tmode=enforce\n$/);
  await writeFile(path.join(dir, '10.conf'), 'process_execution /o/a.o target=/x mode=enforce\n');
  t.same((await run(dir)).results.map((r) => r.outcome), ['kept'], 'mode=enforce is the default: kept');
  t.equal(core.errorLog.list().length, 0);
});
