// Through a real mount on this host: programs other loaders loaded (a pin,
// id:N, the writer's fd) and .bss/.data globals, up to the kernel's answer.
// LSM programs do not load here; a pinned socket filter (loaded by bpftool)
// is refused at every door, and the .bss fixture's values reach the kernel.
// The positive side is test/vm/interop.test.ts.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { cleanup, objDir, startDaemon } from '../helpers/daemon.js';
import { bash } from '../helpers/shell.js';
import { probe } from '../../lib/kernel/index.js';

const verdict = await probe();

t.test('loaded programs and globals through the files: errnos, error_log, nothing attached', async (t) => {
  const d = await startDaemon();
  t.teardown(() => cleanup(d));
  const dir = `/sys/fs/bpf/krsifs-fs-interop-${process.pid}`;
  await mkdir(dir, { recursive: true });
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pin = `${dir}/sock_only`;
  execFileSync('bpftool', ['prog', 'load', path.join(objDir, 'fixtures/sock_only.o'), pin]);
  const id = (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'pinned', pin], { encoding: 'utf8' })) as { id: number }).id;
  const write = (line: string, file = 'process_execution') =>
    bash(`cd ${objDir} && printf '%s\\n' '${line}' > ${d.mountpoint}/${file}`);
  const lastLog = async () => (await bash(`cat ${d.mountpoint}/error_log`)).stdout.trimEnd().split('\n').filter((l) => !l.startsWith('    ')).at(-1);

  let r = await write(pin);
  t.match(r.stderr, 'write error: Invalid argument', 'a pinned socket filter: EINVAL');
  t.match(await lastLog(), `attach pinned:${pin}: program ${id} (sock_only) is a socket_filter program; a behaviour file takes only LSM programs`, 'error_log names the pin, the id and the type');
  r = await write(`id:${id}`);
  t.match(r.stderr, 'write error: Invalid argument', 'the same by id: EINVAL');
  t.match(await lastLog(), `attach id:${id}: program ${id} (sock_only) is a socket_filter program`);
  r = await write('id:2147483000');
  t.match(r.stderr, 'write error: No such file or directory', 'an id nothing has: ENOENT');
  r = await write('id:12x');
  t.match(r.stderr, 'write error: Invalid argument', 'id: not a number: EINVAL');
  r = await write(`${pin} target=/x`);
  t.match(r.stderr, 'write error: Invalid argument', 'KEY=VALUE on a loaded program: EINVAL');
  r = await bash(`printf '/proc/self/fd/0\\n' > ${d.mountpoint}/process_execution`);
  t.match(r.stderr, 'write error: Invalid cross-device link', '/proc/self/fd/N that is no LSM program: EXDEV as before');

  r = await write('fixtures/bss_settings.o target=/tmp/x deny=1 err=13 pair=0x010000004953524b');
  if (verdict.ok) t.equal(r.exitCode, 0, '.bss/.data values: attached');
  else t.match(r.stderr, 'write error: Operation not permitted', '.bss/.data values and raw bytes taken: the load reaches the kernel (EPERM here)');
  r = await write('fixtures/bss_settings.o pair=0x01');
  t.match(r.stderr, 'write error: Invalid argument', 'raw bytes of the wrong size: EINVAL');
  t.match(await lastLog(), 'set global pair: 0x value is 1 bytes, the global is 8 (raw bytes must be its exact size)');
  if (!verdict.ok) t.equal((await bash(`cat ${d.mountpoint}/process_execution`)).stdout, '', 'nothing attached');
  t.equal(d.proc.exitCode, null, 'the daemon is still running');
});
