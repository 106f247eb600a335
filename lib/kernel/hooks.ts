// The running kernel's LSM hooks (addon/bpf_btf.cc reads them from its BTF),
// cached: every load checks its hook here.
import { native } from '../addon.js';

let hooksCache: Promise<string[]> | undefined;
let hookSet: Promise<Set<string>> | undefined;

/**
 * Every LSM hook the running kernel offers (bpf_lsm_* in its BTF), sorted;
 * cached. With `btfPath`, the hooks of that BTF file (not cached).
 */
export function kernelHooks(btfPath?: string): Promise<string[]> {
  if (btfPath !== undefined) return native.kernelHooks(btfPath);
  if (!hooksCache) {
    hooksCache = native.kernelHooks() as Promise<string[]>;
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
