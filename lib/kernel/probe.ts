// probe(): will this kernel load a BPF LSM program? The checks an operator
// can read for themselves (BTF, the active LSM list, lockdown) are read here;
// the addon only mounts securityfs when it is missing and loads the smallest
// LSM program there is (r0 = 0; exit) on bprm_check_security.
import os from 'node:os';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { native } from '../addon.js';
import { errnoName, errnoOf } from '../errors.js';
import { strerror } from '../core/strerror.js';
import type { ProbeChecks, ProbeResult } from './types.js';

const SECURITYFS = '/sys/kernel/security';

async function readTrimmed(path: string): Promise<string | null> {
  return readFile(path, 'utf8').then((s) => s.replace(/[\n ]+$/, ''), () => null);
}

/**
 * GRUB_CMDLINE_LINUX_DEFAULT from /etc/default/grub with its lsm= replaced
 * by (or extended with) `lsm`, so the user can paste the exact line.
 */
async function grubLine(lsm: string): Promise<string> {
  let current = '';
  for (const line of ((await readFile('/etc/default/grub', 'utf8').catch(() => '')) || '').split('\n')) {
    const key = 'GRUB_CMDLINE_LINUX_DEFAULT=';
    if (!line.startsWith(key)) continue;
    current = line.slice(key.length);
    if (current.length >= 2 && (current[0] === '"' || current[0] === "'")) current = current.slice(1, -1);
  }
  const kept = current.split(/\s+/).filter((w) => w && !w.startsWith('lsm='));
  return `GRUB_CMDLINE_LINUX_DEFAULT="${[...kept, lsm].join(' ')}"`;
}

export async function probe(): Promise<ProbeResult> {
  const checks: ProbeChecks = {
    kernelRelease: os.release(),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    securityfs: 'mounted',
    lsm: null,
    bpfLsmActive: false,
    lockdown: null,
    load: { tried: false, ok: false },
  };
  const fail = (errno: number, reason: string, fix?: string): ProbeResult => ({
    ok: false, errno, code: errnoName(errno), reason, ...(fix ? { fix } : {}), checks,
  });

  let lsm = await readTrimmed(`${SECURITYFS}/lsm`);
  let mountErr = 0;
  if (lsm === null) {
    mountErr = native.mountSecurityfs() as number;
    if (mountErr === 0) checks.securityfs = 'mounted-now';
    lsm = await readTrimmed(`${SECURITYFS}/lsm`);
  }
  if (lsm !== null) {
    checks.lsm = lsm.split(',').filter(Boolean);
    checks.bpfLsmActive = checks.lsm.includes('bpf');
  }
  const lockdown = await readTrimmed(`${SECURITYFS}/lockdown`);
  if (lockdown !== null) checks.lockdown = /\[(.*)\]/.exec(lockdown)?.[1] ?? lockdown;

  if (!checks.btf) {
    return fail(errnoOf('ENOENT'), 'the kernel has no BTF (/sys/kernel/btf/vmlinux is missing), which BPF LSM programs need',
      'run a kernel built with CONFIG_DEBUG_INFO_BTF=y and CONFIG_BPF_LSM=y');
  }
  if (checks.lsm === null) {
    const err = mountErr || errnoOf('ENOENT');
    return fail(err,
      `cannot read the active LSM list: securityfs is not mounted at ${SECURITYFS} and mounting it failed (${strerror(err)})`,
      `mount -t securityfs securityfs ${SECURITYFS} (as root)`);
  }
  if (!checks.bpfLsmActive) {
    return fail(errnoOf('EOPNOTSUPP'), `the bpf LSM is not active on this kernel (active: ${lsm})`,
      `set this line in /etc/default/grub:\n  ${await grubLine(`lsm=${checks.lsm.map((l) => `${l},`).join('')}bpf`)}` +
        '\nthen run update-grub and reboot (the kernel also needs CONFIG_BPF_LSM=y)');
  }

  const load = (await native.probeLoad()) as { ok: boolean; errno?: number; log?: string; noHook?: boolean };
  if (load.noHook) {
    return fail(load.errno ?? errnoOf('ENOENT'), "the kernel's BTF has no bpf_lsm_bprm_check_security: BPF LSM is not built in",
      'run a kernel built with CONFIG_BPF_LSM=y');
  }
  checks.load = { tried: true, ok: load.ok, ...(load.errno ? { errno: load.errno, code: errnoName(load.errno) } : {}) };
  if (load.ok) return { ok: true, reason: 'BPF LSM programs load on this kernel', checks };
  const e = load.errno!;
  if (e === errnoOf('EPERM')) {
    const confidential = checks.lockdown === 'confidentiality';
    return fail(e,
      'this kernel refuses BPF LSM programs with EPERM even though the bpf LSM is active and we are root' +
        (confidential ? ": kernel lockdown is 'confidentiality', which forbids it"
          : ': the host\'s policy forbids them (a hypervisor or sandbox restriction, or a security module denying bpf())'),
      confidential ? 'boot with lockdown=integrity or none, or try on a real BPF LSM kernel: npm run vm'
        : 'run krsifs where BPF LSM is allowed (a VM or bare metal kernel with lsm=...,bpf); ' +
          'to try here, run it in a QEMU guest with a real BPF LSM kernel: npm run vm');
  }
  return fail(e, `loading a minimal LSM program failed: ${strerror(e)}${load.log ? ` (${load.log})` : ''}`);
}
