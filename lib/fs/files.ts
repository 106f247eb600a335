// The mount as a table, one entry per file (like apparmorfs's AA_SFS_FILE_*):
// its name, its mode, and what it does: what a read returns and its size and
// time, whether and how it is written, whether it is a stream or static. The
// handlers (handlers.ts) do the bytes, offsets and checks for every file alike.
import type { Krsi } from '../core/krsi.js';

/**
 * The size of a file whose length is not known without asking the kernel
 * (a behaviour's listing) or that has none (events): more than a listing of
 * 38 programs holds, so a reader that trusts st_size (Node's readFile) gets
 * all of it, and never 0 when there may be something to read: since Linux
 * 6.5, sendfile(2) and splice(2) of a FUSE file end at its size without
 * asking the daemon, and a size of 0 is an empty file to busybox cat and
 * every other splicing reader (the addon refuses the page-cache read that a
 * size above 0 leads to, and they fall back to read(2)).
 */
export const NOMINAL_SIZE = 65536;

export interface FileEntry {
  name: string;
  /** Permission bits; the type bits are added by the filesystem. */
  mode: number;
  /** What a read from offset 0 returns now; a stream (events) has none: its reads wait for records. */
  text?: () => Promise<string> | string;
  /** getattr's size: what a read returns now when that is in memory (cheap), else NOMINAL_SIZE. */
  size: () => number;
  /** getattr's times, in ms. */
  mtime: () => number;
  /**
   * How it is written: `lines` (each line runs: a behaviour file), `clear`
   * (only truncated to 0, which empties it: error_log); absent: read-only,
   * root included.
   */
  write?: 'lines' | 'clear';
  /** Empties it (`clear` files). */
  clear?: () => void;
  /** events: every open gets its own queue of records. */
  stream?: true;
  /** Fixed for the mount's life, with an exact size: the page cache may serve it. */
  cache?: true;
  /**
   * Its size and time change only when the core says so (a behaviour's
   * mtime, Registry.onTouch), or never: the kernel may keep its attributes.
   */
  fixed?: true;
}

export function fileTable(core: Krsi, mountedAt: number): Map<string, FileEntry> {
  const table = new Map<string, FileEntry>();
  const since = () => mountedAt;
  const nominal = () => NOMINAL_SIZE;
  // Behaviour files: root reads and writes; writing also needs CAP_MAC_ADMIN.
  // A listing is asked of the kernel when read, not when stat'ed, so the size
  // is nominal, and the attributes change only with the mtime, when krsifs
  // attaches or detaches (the FUSE layer is told: KrsiFsHandlers.watch).
  for (const name of core.behaviours()) {
    table.set(name, {
      name, mode: 0o600, write: 'lines', size: nominal, fixed: true,
      text: () => core.listing(name),
      mtime: () => core.registry.changedAt(name).getTime(),
    });
  }
  // The resolved catalogue is no secret, and it does not change while mounted.
  table.set('hooks', { name: 'hooks', mode: 0o444, cache: true, fixed: true, text: () => core.hooksText(), size: () => Buffer.byteLength(core.hooksText()), mtime: since });
  // Only root reads it (it names paths and programs); writing nothing clears it.
  table.set('error_log', {
    name: 'error_log', mode: 0o600, write: 'clear',
    text: () => core.errorLog.text(),
    size: () => Buffer.byteLength(core.errorLog.text()),
    mtime: () => core.errorLog.list().at(-1)?.time.getTime() ?? mountedAt,
    clear: () => core.errorLog.clear(),
  });
  // Audit records, a blocking stream like trace_pipe: only root reads it.
  table.set('events', { name: 'events', mode: 0o400, stream: true, fixed: true, size: nominal, mtime: since });
  // Counts of denials per behaviour, like the hooks: no paths, no secret.
  table.set('stats', { name: 'stats', mode: 0o444, fixed: true, text: () => core.statsText(), size: nominal, mtime: since });
  return table;
}
