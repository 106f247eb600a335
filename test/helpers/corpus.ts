// The bad-input corpus of test/fs/corpus.test.ts (host) and the VM hardening
// suite (test/vm/fixtures/hardening.guest.ts, which imports the compiled
// module inside the guest): over 200 bad inputs generated from a fixed seed.
// Plain node: no tap, no dev dependency.
import { open, readFile, symlink, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';

/** The errnos the README's table documents for a write. */
export const documented = new Set(
  ['ENOENT', 'EISDIR', 'ENOEXEC', 'EINVAL', 'E2BIG', 'EPERM', 'EACCES', 'ELOOP', 'ENOTDIR', 'ENAMETOOLONG', 'EXDEV'].map(
    (c) => (constants.errno as Record<string, number>)[c]!,
  ),
);
export const nameOf = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
export function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Case {
  name: string;
  /** The bytes written to the behaviour file (one line, newline included). */
  bytes: Buffer;
  offset?: number;
  /**
   * A real BPF object may be behind it (a symlink to one, or bit flips that
   * hit bytes libbpf and the kernel ignore): on a kernel that loads BPF LSM
   * programs it can attach.
   */
  mayLoad?: boolean;
}

export async function corpus(dir: string, seed: number, objDir: string): Promise<Case[]> {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const obj = await readFile(path.join(objDir, 'deny_exec.o'));
  const cases: Case[] = [];
  const line = (s: string | Buffer) => Buffer.concat([Buffer.from(s), Buffer.from('\n')]);
  const file = async (name: string, data: Buffer) => {
    const p = path.join(dir, name);
    await writeFile(p, data);
    return p;
  };
  for (let i = 0; i < 40; i++) {
    const data = Buffer.from(Array.from({ length: int(8192) }, () => int(256)));
    cases.push({ name: `random bytes #${i} (${data.length} B)`, bytes: line(await file(`random${i}`, data)) });
  }
  for (let i = 0; i < 40; i++) {
    const n = int(obj.length);
    cases.push({ name: `deny_exec.o truncated to ${n} B`, bytes: line(await file(`trunc${i}.o`, obj.subarray(0, n))) });
  }
  for (let i = 0; i < 40; i++) {
    const data = Buffer.from(obj);
    const flips = 1 + int(8);
    for (let f = 0; f < flips; f++) data[int(data.length)]! ^= 1 << int(8);
    cases.push({ name: `deny_exec.o with ${flips} flipped bits #${i}`, bytes: line(await file(`flip${i}.o`, data)), mayLoad: true });
  }
  for (let i = 0; i < 20; i++) {
    cases.push({ name: `huge line #${i}`, bytes: line(Buffer.alloc(4097 + int(100_000), 'a')) });
  }
  for (let i = 0; i < 20; i++) {
    const s = Buffer.from(`${objDir}/deny_exec.o target=/tmp/x${i}`);
    s[int(s.length)] = 0;
    cases.push({ name: `NUL byte in a line #${i}`, bytes: line(s) });
  }
  for (let i = 0; i < 20; i++) {
    const s = Buffer.from(`${objDir}/deny_exec.o target=/tmp/`);
    cases.push({ name: `non-UTF-8 #${i}`, bytes: line(Buffer.concat([s, Buffer.from([0xc0 + int(32), int(0x40)])])) });
  }
  for (let i = 0; i < 10; i++) {
    await symlink(path.join(objDir, 'deny_exec.o'), path.join(dir, `link${i}.o`));
    cases.push({ name: `symlink to a real object #${i}`, bytes: line(path.join(dir, `link${i}.o`)), mayLoad: true });
  }
  await symlink(path.join(dir, 'loop-b'), path.join(dir, 'loop-a'));
  await symlink(path.join(dir, 'loop-a'), path.join(dir, 'loop-b'));
  await symlink('/nonexistent/target.o', path.join(dir, 'dangling.o'));
  for (const [name, p] of [
    ['a symlink loop', path.join(dir, 'loop-a')],
    ['a dangling symlink', path.join(dir, 'dangling.o')],
    ['a path through a file', '/etc/passwd/x.o'],
    ['a name too long', '/tmp/' + 'n'.repeat(300)],
    ['/proc/self/exe', '/proc/self/exe'],
    ['/proc/self/root/etc/passwd', '/proc/self/root/etc/passwd'],
    ['/proc/1/cwd', '/proc/1/cwd'],
    ['/proc/self/fd/0', '/proc/self/fd/0'],
    ['/proc/kcore', '/proc/kcore'],
    ['/dev/zero', '/dev/zero'],
    ['/dev/null', '/dev/null'],
    ['/sys/kernel/btf/vmlinux', '/sys/kernel/btf/vmlinux'],
  ] as const) {
    cases.push({ name, bytes: line(p) });
  }
  for (let i = 0; i < 10; i++) {
    cases.push({ name: `a write at offset ${1000 * i + 7}`, bytes: line(`/nonexistent/odd${i}.o`), offset: 1000 * i + 7 });
  }
  return cases;
}

/**
 * Send one case to a behaviour file through a fresh open, as a client would:
 * the errno of the write (0 when it succeeded). close() is waited for, its
 * answer ignored: the write is what the case is about.
 */
export async function sendCase(file: string, c: Case): Promise<number> {
  const fh = await open(file, 'w');
  let errno = 0;
  try {
    await fh.write(c.bytes, 0, c.bytes.length, c.offset ?? null);
  } catch (e) {
    errno = -((e as NodeJS.ErrnoException).errno ?? 0);
  }
  await fh.close().catch(() => {});
  return errno;
}
