// A corpus of over 200 bad inputs, generated from a fixed seed: random bytes,
// truncated and bit-flipped BPF objects, huge lines, NUL bytes, non-UTF-8,
// paths through symlinks and /proc, writes at odd offsets. Each must get an
// errno the README documents, the daemon must never die, and nothing that was
// attached may change.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { corpus, documented, nameOf, sendCase } from '../helpers/corpus.js';
import { cleanup, objDir, startDaemon } from '../helpers/daemon.js';

t.test('over 200 bad inputs: documented errnos, a live daemon, nothing changed', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'krsifs-corpus-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const seed = Number(process.env.KRSIFS_CORPUS_SEED ?? 20261125);
  t.comment(`seed ${seed} (KRSIFS_CORPUS_SEED replays it)`);
  const cases = await corpus(dir, seed, objDir);
  t.ok(cases.length >= 200, `${cases.length} inputs`);
  const file = path.join(d.mountpoint, 'process_execution');
  const before = await readFile(file, 'utf8');
  const seen = new Map<string, number>();
  for (const c of cases) {
    const errno = await sendCase(file, c);
    const code = nameOf.get(errno) ?? String(errno);
    seen.set(code, (seen.get(code) ?? 0) + 1);
    if (!documented.has(errno)) t.fail(`${c.name}: got ${code}, not a documented errno`);
  }
  t.pass(`errnos seen: ${[...seen].map(([k, v]) => `${k}×${v}`).join(' ')}`);
  t.equal(d.proc.exitCode, null, 'the daemon is alive');
  t.equal(await readFile(file, 'utf8'), before, 'the listing did not change');
  t.match(await readFile(path.join(d.mountpoint, 'hooks'), 'utf8'), /process_execution/, 'and still serves');
});
