// Steps in the pin root are done on the loop: bpffs lives in memory, so its
// mkdir, rename, symlink and unlink never wait for a device or for a writer
// (the root is the daemon's, mode 0700, checked to be bpffs at start). Each
// takes microseconds, less than a hop to a libuv pool thread and back; and no
// other request sees a commit half done.
// Except the steps that let a link go: an unlink of a link's pin, or a rename
// over one. The kernel's release of the link (the hook's trampoline rebuilt
// and patched) costs the thread that made that step: under TCG on 6.1 such an
// unlink took 20-65 ms under strace, other bpffs steps 4-12 ms, and it was the
// loop's longest stall at every detach. Those run on the pool (onBpffsAsync).
import { KrsiError } from '../errors.js';

/** Run a bpffs step on the loop; its error is a KrsiError saying `what`. */
export function onBpffs<T>(step: () => T, what: string): T {
  try {
    return step();
  } catch (e) {
    throw KrsiError.from(e, what);
  }
}

/** A bpffs step that may release a link, off the loop; its error is a KrsiError saying `what`. */
export async function onBpffsAsync<T>(step: () => Promise<T>, what: string): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw KrsiError.from(e, what);
  }
}
