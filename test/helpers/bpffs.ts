// The host suites pin in /sys/fs/bpf: a bpf filesystem is mounted there if
// none is (the daemon does the same at start; a test file run alone must
// not depend on another having started one first).
import { execFileSync } from 'node:child_process';
import { isBpffs } from '../../lib/kernel/port.js';

export async function ensureBpffs(dir = '/sys/fs/bpf'): Promise<void> {
  if (!(await isBpffs(dir))) execFileSync('mount', ['-t', 'bpf', 'bpf', dir]);
}
