// krsifs mount: resolve the catalogue against this kernel, adopt what earlier
// daemons pinned, apply the policy directory (again on SIGHUP), serve the
// files, unmount cleanly on SIGINT/SIGTERM (and with
// --ephemeral, detach everything pinned). Attached programs live in bpffs pins,
// not in this process: a crash or a restart leaves them attached.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from './errors.js';
import type { Logger } from './log.js';
import type { ProbeResult } from './kernel/index.js';
import { loadCatalogue, resolveCatalogue } from './core/catalogue.js';
import { Krsi } from './core/krsi.js';
import { KrsiFsHandlers } from './fs/handlers.js';
import * as kernel from './kernel/index.js';
import { BpffsKernelPort, DEFAULT_PIN_ROOT, preparePinRoot } from './kernel/port.js';
import { detachStaleMount, mount } from './fuse/index.js';
import { startEvents } from './events-daemon.js';
import { lockMountpoint, lockPinRoot } from './daemon-lock.js';
import { PolicyService, policyDir, strictFailure, summary } from './policies/service.js';
import type { Report } from './policies/report.js';
import { notifier } from './notify.js';

export interface MountOptions {
  mountpoint: string;
  catalogue?: string;
  /** Where links are pinned (default /sys/fs/bpf/krsi); must be on bpffs. */
  pinRoot?: string;
  /** Detach everything pinned when the daemon stops cleanly. */
  ephemeral?: boolean;
  /** The policy directory (undefined: /etc/krsifs/policies.d when it exists; '': none). */
  policies?: string;
  /** A failed policy line makes the daemon exit 1 before mounting. */
  policiesStrict?: boolean;
  /** Detach what the policy directory does not declare. */
  prune?: boolean;
  log: Logger;
}

export const FUSE_OPTIONS = ['allow_other', 'default_permissions', 'fsname=krsifs', 'subtype=krsifs'];

export async function runMount(opts: MountOptions): Promise<number> {
  const { log } = opts;
  const mountpoint = path.resolve(opts.mountpoint);
  // Caught from the first line: the default action of each kills the daemon,
  // and a script may signal it as soon as the mount appears, before the lines
  // that install the serving handlers have run. Before the mount exists a stop
  // ends the start-up where it is (what is pinned stays pinned, as after a
  // crash: the next start adopts it); a SIGHUP is kept for when it serves.
  let onStop = (signal: string): void => {
    log.info('stopping before the mount was made', { signal });
    process.exit(0);
  };
  let onReload = (): void => void (reloadAsked = true);
  let reloadAsked = false;
  process.on('SIGINT', () => onStop('SIGINT'));
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGHUP', () => onReload());

  const probe = await kernel.probe();
  if (probe.ok) {
    log.info('probe: this kernel loads BPF LSM programs', {});
  } else {
    log.warn('probe: this kernel refuses BPF LSM programs: attaching will fail here; mounting anyway', {
      reason: probe.reason,
      fix: probe.fix,
      try: 'npm run vm (krsifs on a real BPF LSM kernel in QEMU)',
    });
  }

  const hooks = new Set(await kernel.kernelHooks());
  const resolved = resolveCatalogue(await loadCatalogue(opts.catalogue), hooks);
  for (const b of resolved) {
    if (b.hook) log.info('behaviour', { file: b.behaviour, hook: b.hook });
    else log.warn('behaviour has no hook here: no file', { file: b.behaviour, reason: b.reason });
  }
  await lockMountpoint(mountpoint);
  const pins = await preparePinRoot(path.resolve(opts.pinRoot ?? DEFAULT_PIN_ROOT));
  if (!pins.error) lockPinRoot(pins.root);
  if (pins.mounted) log.info('mounted bpffs', { at: '/sys/fs/bpf' });
  if (pins.error) {
    log.error('pins: cannot pin links here: every attach will fail; mounting anyway', { error: pins.error.message });
  } else {
    log.info('pins', { root: pins.root, ephemeral: !!opts.ephemeral });
  }
  const port = new BpffsKernelPort(pins, log);
  const events = startEvents(pins.error ? null : pins.root, resolved, log, port);
  const core = new Krsi(port, resolved, { log, loadOptions: events.loadOptions, attachRefusal: bpfLsmRefusal(probe) });
  port.onForeign = (behaviour, err) => core.warn(behaviour, err);
  if (!pins.error) {
    for (const b of core.behaviours()) await port.ensurePinDir(b);
    const adopted = await core.adopt();
    if (adopted) log.info('adopted pinned programs', { count: adopted });
  }
  const dir = await policyDir(opts.policies);
  const policies = dir === null ? null : new PolicyService({
    dir, prune: !!opts.prune, strict: !!opts.policiesStrict, core, kernel: port, pinRoot: pins.root, mountpoint, log,
  });
  // before the mount: once the mount is there (and READY=1 sent), the declared policy is in force
  let applied: Report | null = null;
  try {
    applied = policies && (await policies.apply());
    const fatal = applied && opts.policiesStrict ? strictFailure(applied) : null;
    if (fatal) throw fatal;
  } catch (e) {
    events.close(); // its poll handle would keep the process alive
    throw e;
  }
  const handlers = new KrsiFsHandlers(core, { events: events.hub });

  if (detachStaleMount(mountpoint)) log.warn('detached a stale mount left by a dead daemon', { mountpoint });
  await mkdir(mountpoint, { recursive: true });

  let stopping = false;
  let done!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
  void finished.then(() => events.close()); // the ring's poll handle would keep the process alive
  const m = await mount(mountpoint, handlers, {
    options: FUSE_OPTIONS,
    onUnmounted: () => {
      if (stopping) return;
      log.warn('unmounted behind our back; exiting', { mountpoint });
      done(0);
    },
  }).catch((e: unknown) => {
    throw KrsiError.from(e, `mount ${mountpoint}`);
  });
  log.info('mounted', { mountpoint, files: handlers.fileNames.length });
  const notify = notifier(log);
  notify({ READY: 1, STATUS: summary(applied) });

  // Not a loop turn since the mount was made (a signal's handler runs at one),
  // so no stop can have taken the start-up's way out with the mount there.
  onStop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    notify({ STOPPING: 1 });
    m.unmount().then(
      async () => {
        log.info('unmounted', { mountpoint });
        if (opts.ephemeral && !pins.error) {
          const n = await core.detachEverything();
          log.info('ephemeral: detached everything pinned', { count: n, root: pins.root });
        }
        done(0);
      },
      (e: unknown) => {
        log.error('unmount failed', { mountpoint, error: (e as Error).message });
        done(1);
      },
    );
  };
  onReload = () => {
    if (!policies) return log.info('SIGHUP: no policy directory to read again', {});
    notify({ RELOADING: 1 });
    policies.apply().then(
      (r) => notify({ READY: 1, STATUS: summary((applied = r)) }),
      (e: unknown) => {
        log.error('reloading the policy directory failed', { error: (e as Error).message });
        notify({ READY: 1 });
      },
    );
  };
  if (reloadAsked) {
    log.info('SIGHUP came while starting: reading the policy directory again', {});
    onReload();
  }
  // loaded only for the monitor (perf_hooks: 1 MiB of an idle daemon's RSS); after
  // the handlers above, which must come with no loop turn after the mount
  if (process.env.KRSIFS_LOOP_MONITOR === '1') (await import('./loop-monitor.js')).startLoopMonitor(log);
  return finished;
}

/**
 * With the bpf LSM built in but not in the kernel's active list (lsm= without
 * bpf), the kernel loads and attaches an LSM program without complaint and
 * never calls it: the write would succeed, the file would list it, and
 * nothing would be enforced or reported. So krsifs refuses every attach
 * there itself, with the probe's errno (EOPNOTSUPP) and fix (the GRUB line);
 * where the list is unreadable, the kernel decides.
 */
export function bpfLsmRefusal(probe: ProbeResult): ((hook: string) => KrsiError) | undefined {
  const { lsm, bpfLsmActive } = probe.checks;
  if (bpfLsmActive || lsm === null) return undefined;
  return (hook) =>
    new KrsiError(
      probe.errno ?? 'EOPNOTSUPP',
      `load: ${probe.reason}: the kernel would attach the program to ${hook} and never run it, so krsifs attaches nothing; ` +
        `${(probe.fix ?? `add bpf to the kernel's lsm= list`).replace(/\s*\n\s*/g, ' ')} (see krsifs doctor)`,
      { details: { hook, lsm: lsm.join(',') } },
    );
}
