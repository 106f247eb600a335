// 200 failed loads leave no fd and no memory behind.
import t from 'tap';
import { loadObject as loadAndAttach } from '../vm/fixtures/kernel-steps.js';

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdir } from 'node:fs/promises';
import v8 from 'node:v8';
import vm from 'node:vm';

// a real collection before each measure, without --expose-gc on the command line
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const objDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bpf/obj');
/** The bytes of bpf/obj/<name>.o (name may be 'fixtures/x'). */
const obj = (name: string): Promise<Buffer> => readFile(path.join(objDir, `${name}.o`));
const fdCount = async () => (await readdir('/proc/self/fd')).length;

t.test('failed loadAndAttach calls do not leak', async (t) => {
  const wrongHook = await obj('deny_open');
  // EPERM on this host, a verifier rejection on a BPF LSM kernel: fails either way
  const refused = await obj('fixtures/verifier_reject');
  const fail = async (i: number) => {
    const p = i % 2 ? loadAndAttach(wrongHook, 'bprm_check_security') : loadAndAttach(refused, 'bprm_check_security');
    await p.then(() => t.fail('should fail'), () => undefined);
  };
  // warm up allocators and caches: 50 left the heap's high-water mark still
  // moving on a loaded machine (the first batch then grew by 20.5 MiB once)
  for (let i = 0; i < 200; i++) await fail(i);
  gc();
  const fds = await fdCount();
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 200; i++) await fail(i);
  gc();
  const rss1 = process.memoryUsage().rss;
  for (let i = 0; i < 200; i++) await fail(i);
  gc();
  const rss2 = process.memoryUsage().rss;
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  t.ok(Math.abs((await fdCount()) - fds) <= 2, `fds: ${fds} before, ${await fdCount()} after 400 failures`);
  // A leak grows with every call; allocator and heap noise levels off. Under
  // a loaded machine the first batch can still move the heap's high-water
  // mark, so the bound that matters is the second batch's.
  t.ok(rss1 - rss0 < 20 * 2 ** 20, `first 200: RSS grew by ${mib(rss1 - rss0)} MiB (< 20)`);
  t.ok(rss2 - rss1 < 8 * 2 ** 20, `next 200: RSS grew by ${mib(rss2 - rss1)} MiB (< 8: no growth per call)`);
});
