// The host suites pin in /sys/fs/bpf: a bpf filesystem is mounted there if
// none is (the daemon does the same at start; a test file run alone must
// not depend on another having started one first).
import { execFileSync } from 'node:child_process';
import { statfsSync } from 'node:fs';

const BPF_FS_MAGIC = 0xcafe4a11;

export function ensureBpffs(dir = '/sys/fs/bpf'): void {
  if (statfsSync(dir).type === BPF_FS_MAGIC) return;
  execFileSync('mount', ['-t', 'bpf', 'bpf', dir]);
}
