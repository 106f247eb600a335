// Steps in the pin root are done on the loop: bpffs lives in memory, so its
// mkdir, rename, symlink and unlink never wait for a device or for a writer
// (the root is the daemon's, mode 0700, checked to be bpffs at start). Each
// takes microseconds, less than a hop to the libuv pool, which four slow
// loads may hold for seconds; and no other request sees a commit half done.
import { KrsiError } from '../errors.js';

/** Run a bpffs step on the loop; its error is a KrsiError saying `what`. */
export function onBpffs<T>(step: () => T, what: string): T {
  try {
    return step();
  } catch (e) {
    throw KrsiError.from(e, what);
  }
}
