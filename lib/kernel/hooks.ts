// The running kernel's LSM hooks (addon/bpf_hooks.cc reads them from its BTF
// once), cached: every load checks its hook here.
import { native } from '../addon.js';

let hooksCache: Promise<string[]> | undefined;
let hookSet: Promise<Set<string>> | undefined;

/** Every LSM hook the running kernel offers (bpf_lsm_* in its BTF), sorted; cached. */
export function kernelHooks(): Promise<string[]> {
  if (!hooksCache) {
    // the addon's table is in BTF id order, where a name may come twice
    hooksCache = (native.kernelHooks() as Promise<string[]>).then((h) => [...new Set(h)].sort());
    hooksCache.catch(() => {
      hooksCache = undefined; // try again next time
      hookSet = undefined;
    });
  }
  return hooksCache.then((h) => [...h]);
}

/** Does the running kernel offer LSM hook `name`? */
export async function hasHook(name: string): Promise<boolean> {
  if (!hookSet) hookSet = kernelHooks().then((h) => new Set(h));
  return (await hookSet).has(name);
}
