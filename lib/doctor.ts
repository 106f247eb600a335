// krsifs doctor: can this machine run krsifs, and if not, what to change.
// Every failed check comes with the fix an operator can apply.
import { access, readFile, constants as fsc } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import { credentialsOf, holds } from './kernel/proc.js';
import type { ProbeResult } from './kernel/index.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorDeps {
  probe(): Promise<ProbeResult>;
  hasHooks(): Promise<number>;
}

const CAPS: [string, number][] = [
  ['CAP_SYS_ADMIN', 21],
  ['CAP_MAC_ADMIN', 33],
  ['CAP_PERFMON', 38],
  ['CAP_BPF', 39],
];

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, fsc.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function kernelConfig(): Promise<string | null> {
  try {
    return await readFile(`/boot/config-${os.release()}`, 'utf8');
  } catch {
    /* try the next place */
  }
  try {
    return gunzipSync(await readFile('/proc/config.gz')).toString('utf8');
  } catch {
    return null;
  }
}

async function mountsOf(type: string): Promise<string[]> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === type)
    .map((f) => f[1]!);
}

export async function runDoctor(deps: DoctorDeps): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);

  add({ name: 'kernel', ok: true, detail: `${os.type()} ${os.release()} ${os.machine()}` });

  const btf = await exists('/sys/kernel/btf/vmlinux');
  add({
    name: 'BTF',
    ok: btf,
    detail: btf ? '/sys/kernel/btf/vmlinux present' : '/sys/kernel/btf/vmlinux missing',
    fix: btf ? undefined : 'boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu and Fedora kernels are)',
  });

  const hooks = btf ? await deps.hasHooks().catch(() => 0) : 0;
  const config = await kernelConfig();
  const configLine = config?.split('\n').find((l) => l.startsWith('CONFIG_BPF_LSM=') || l === '# CONFIG_BPF_LSM is not set');
  const bpfLsmBuilt = configLine ? configLine === 'CONFIG_BPF_LSM=y' : hooks > 0;
  add({
    name: 'CONFIG_BPF_LSM',
    ok: bpfLsmBuilt,
    detail: configLine
      ? `${configLine} (${config ? 'kernel config' : ''}); ${hooks} bpf_lsm_* hooks in BTF`
      : `kernel config not readable; ${hooks} bpf_lsm_* hooks in BTF`,
    fix: bpfLsmBuilt ? undefined : 'boot a kernel built with CONFIG_BPF_LSM=y',
  });

  let lsm = '';
  try {
    lsm = (await readFile('/sys/kernel/security/lsm', 'utf8')).trim();
  } catch {
    /* securityfs not mounted: reported below */
  }
  const bpfActive = lsm.split(',').includes('bpf');
  const withBpf = lsm ? `${lsm.split(',').filter((x) => x !== 'bpf').join(',')},bpf` : 'lockdown,capability,landlock,yama,apparmor,bpf';
  add({
    name: 'bpf LSM active',
    ok: bpfActive,
    detail: lsm ? `/sys/kernel/security/lsm: ${lsm}` : '/sys/kernel/security/lsm not readable (is securityfs mounted?)',
    fix: bpfActive
      ? undefined
      : lsm
        ? `add bpf to the kernel's LSM list: in /etc/default/grub set ` +
          `GRUB_CMDLINE_LINUX_DEFAULT="... lsm=${withBpf}", then run update-grub and reboot`
        : 'mount -t securityfs securityfs /sys/kernel/security, then run krsifs doctor again',
  });

  const lockdown = await readFile('/sys/kernel/security/lockdown', 'utf8').then((s) => s.trim(), () => '');
  if (lockdown) {
    const mode = /\[(\w+)\]/.exec(lockdown)?.[1] ?? lockdown;
    add({
      name: 'lockdown',
      ok: mode !== 'confidentiality',
      detail: `lockdown: ${mode}`,
      fix: mode === 'confidentiality' ? 'boot with lockdown=integrity or none: confidentiality mode forbids reading kernel memory from BPF' : undefined,
    });
  }

  const bpffs = await mountsOf('bpf');
  add({
    name: 'bpffs',
    ok: bpffs.length > 0,
    detail: bpffs.length ? `mounted at ${bpffs.join(', ')}` : 'no bpf filesystem mounted (pins keep policies alive after the daemon)',
    fix: bpffs.length ? undefined : 'mount -t bpf bpf /sys/fs/bpf (krsifs mount does this itself when it can)',
  });

  const fuse = await access('/dev/fuse', fsc.R_OK | fsc.W_OK).then(() => true, () => false);
  add({
    name: '/dev/fuse',
    ok: fuse,
    detail: fuse ? 'present and usable' : '/dev/fuse missing or not usable',
    fix: fuse ? undefined : 'modprobe fuse (package fuse3 or the kernel module fuse)',
  });

  const missing: string[] = [];
  const self = await credentialsOf(process.pid);
  for (const [name, bit] of CAPS) if (!holds(self, bit)) missing.push(name);
  add({
    name: 'capabilities',
    ok: missing.length === 0,
    detail: missing.length ? `missing ${missing.join(', ')}` : CAPS.map((c) => c[0]).join(', '),
    fix: missing.length ? 'run krsifs as root (it loads BPF programs and serves a FUSE mount)' : undefined,
  });

  const probe = await deps.probe();
  add({
    name: 'live probe',
    ok: probe.ok,
    detail: probe.ok ? 'loaded an LSM program on bprm_check_security and closed it' : probe.reason,
    fix: probe.ok ? undefined : probe.fix,
  });
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const out: string[] = [];
  for (const c of checks) {
    out.push(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (!c.ok && c.fix) out.push(`      ${''.padEnd(width)}  fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  out.push(failed ? `${failed} check(s) failed: krsifs will mount, but attaching will fail here` : 'all checks passed: krsifs can attach and enforce here');
  return out.join('\n') + '\n';
}
