// A listing read from bpffs, kept while its directories are unchanged. The
// addon's dirsGeneration watches each directory (inotify): the kernel queues
// the event inside the syscall that created, removed or renamed an entry,
// after the change is visible, so a number taken before a listing and still
// the same at the next read means that nothing the listing saw has changed.
// What a pin resolves to cannot change under the same entry: a tracing link
// keeps its program and hook for life, and a link record is replaced by a
// rename. A directory that cannot be watched (missing) is read every time.
import * as kernel from './index.js';

export class KeptListings<T extends object> {
  private readonly kept = new Map<string, { gen: number; items: readonly T[] }>();

  /** The items `read` returns for `dirs`, read again only when one of them changed since. */
  get(dirs: readonly string[], read: () => T[]): T[] {
    const key = dirs.join('\0');
    // taken before the read: a change during it shows at the next call
    const gen = kernel.dirsGeneration(dirs);
    const kept = this.kept.get(key);
    if (kept && kept.gen === gen && gen >= 0) return [...kept.items];
    const items = read();
    if (gen < 0) this.kept.delete(key);
    else this.kept.set(key, { gen, items: items.map((i) => Object.freeze(i)) });
    return [...items];
  }
}
