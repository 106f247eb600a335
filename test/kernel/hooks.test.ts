// kernelHooks()/hasHook(): the LSM hooks of this kernel, from its BTF.
import t from 'tap';
import { hasHook, kernelHooks } from '../../lib/kernel/index.js';

t.test('this kernel offers the hooks krsifs maps behaviours to', async (t) => {
  const hooks = await kernelHooks();
  t.ok(hooks.length > 200, `more than 200 hooks (${hooks.length})`);
  t.ok(hooks.includes('bprm_check_security'), 'bprm_check_security');
  t.ok(hooks.includes('file_open'), 'file_open');
  t.notOk(hooks.includes('made_up_hook'), 'no made-up hook');
  t.notOk(hooks.some((h) => h.startsWith('bpf_lsm_')), 'the bpf_lsm_ prefix is stripped');
  t.notOk(hooks.includes('verify_prog'), "the BPF LSM's own functions are not hooks");
  t.same(hooks, [...hooks].sort(), 'sorted');
  t.equal(new Set(hooks).size, hooks.length, 'no duplicates');
  t.ok(await hasHook('file_open'), 'hasHook(file_open)');
  t.notOk(await hasHook('made_up_hook'), 'hasHook(made_up_hook) is false');
  const again = await kernelHooks();
  again.pop();
  t.equal((await kernelHooks()).length, hooks.length, 'the cache hands out copies');
});
