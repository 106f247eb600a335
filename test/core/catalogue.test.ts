import t from 'tap';
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadCatalogue, parseCatalogue, resolveCatalogue } from '../../lib/core/catalogue.js';

t.test('the default catalogue is DESIGN.md\'s', async (t) => {
  const cat = await loadCatalogue();
  t.same(cat.get('process_execution'), ['bprm_check_security']);
  t.same(cat.get('module_load'), ['kernel_read_file', 'kernel_module_from_file']);
  t.same(cat.get('process_execution_committed'), ['bprm_committed_creds']);
  t.same(cat.get('module_load_data'), ['kernel_load_data']);
  t.equal(cat.size, 15);
});

t.test('resolution takes the first candidate the kernel offers', async (t) => {
  const cat = parseCatalogue({ a: ['x', 'y'], b: ['y'], c: ['nope', 'neither'] });
  const r = resolveCatalogue(cat, new Set(['y']));
  t.same(r.map((b) => [b.behaviour, b.hook]), [['a', 'y'], ['b', 'y'], ['c', null]]);
  t.match(r[2]!.reason, /none of nope, neither is an LSM hook of this kernel/);
});

t.test('a bad catalogue is EINVAL naming the problem', async (t) => {
  const cases: [unknown, RegExp][] = [
    [[], /expected a JSON object/],
    [{}, /no behaviours/],
    [{ 'Bad Name': ['file_open'] }, /behaviour "Bad Name"/],
    [{ hooks: ['file_open'] }, /reserved/],
    [{ a: [] }, /non-empty array/],
    [{ a: 'file_open' }, /non-empty array/],
    [{ a: ['file open'] }, /is not a hook name/],
  ];
  for (const [json, msg] of cases) t.throws(() => parseCatalogue(json, 'x.json'), { code: 'EINVAL', message: msg });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-cat-'));
  t.teardown(() => import('node:fs/promises').then((f) => f.rm(dir, { recursive: true })));
  await writeFile(path.join(dir, 'broken.json'), '{ "a": [');
  await t.rejects(loadCatalogue(path.join(dir, 'broken.json')), { code: 'EINVAL', message: /not valid JSON/ });
  await t.rejects(loadCatalogue(path.join(dir, 'missing.json')), { code: 'ENOENT' });
});
