// krsifs mount: resolve the catalogue against this kernel, serve the files,
// unmount cleanly on SIGINT/SIGTERM.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from './errors.js';
import type { Logger } from './log.js';
import { loadCatalogue, resolveCatalogue } from './core/catalogue.js';
import { Krsi } from './core/krsi.js';
import { KrsiFsHandlers } from './fs/handlers.js';
import * as kernel from './kernel/index.js';
import { detachStaleMount, mount } from './fuse/index.js';

export interface MountOptions {
  mountpoint: string;
  catalogue?: string;
  log: Logger;
}

export const FUSE_OPTIONS = ['allow_other', 'default_permissions', 'fsname=krsifs', 'subtype=krsifs'];

export async function runMount(opts: MountOptions): Promise<number> {
  const { log } = opts;
  const mountpoint = path.resolve(opts.mountpoint);

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
  const core = new Krsi(kernel, resolved, { log });
  const handlers = new KrsiFsHandlers(core);

  if (detachStaleMount(mountpoint)) log.warn('detached a stale mount left by a dead daemon', { mountpoint });
  await mkdir(mountpoint, { recursive: true });

  let stopping = false;
  let done!: (code: number) => void;
  const finished = new Promise<number>((resolve) => (done = resolve));
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
  log.info('mounted', { mountpoint, files: core.behaviours().length + 2 });

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    m.unmount().then(
      () => {
        log.info('unmounted', { mountpoint });
        done(0);
      },
      (e: unknown) => {
        log.error('unmount failed', { mountpoint, error: (e as Error).message });
        done(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  return finished;
}
