// 200 failed loads leave no fd and no memory behind.
import t from 'tap';
import { loadAndAttach } from '../../lib/kernel/index.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdir } from 'node:fs/promises';

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
  for (let i = 0; i < 20; i++) await fail(i); // warm up allocators and caches
  global.gc?.();
  const fds = await fdCount();
  const rss = process.memoryUsage().rss;
  for (let i = 0; i < 200; i++) await fail(i);
  global.gc?.();
  const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
  t.ok(Math.abs((await fdCount()) - fds) <= 2, `fds: ${fds} before, ${await fdCount()} after`);
  t.ok(grown < 20, `RSS grew by ${grown.toFixed(1)} MiB (< 20)`);
});
