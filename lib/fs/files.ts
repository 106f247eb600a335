// The mount as a table, one entry per file (like apparmorfs's AA_SFS_FILE_*):
// its name, its mode, and which kind of file it is. Every file is opened with
// direct I/O, so `cat` reads what the handler returns; its size is what a
// read returns now or a nominal one (KrsiFsHandlers.size).
export type FileKind = 'behaviour' | 'hooks' | 'error_log' | 'events' | 'stats';

export interface FileEntry {
  name: string;
  kind: FileKind;
  /** Permission bits; the type bits are added by the filesystem. */
  mode: number;
}

export function fileTable(behaviours: readonly string[]): Map<string, FileEntry> {
  const table = new Map<string, FileEntry>();
  // Behaviour files: root reads and writes; writing also needs CAP_MAC_ADMIN.
  for (const name of behaviours) table.set(name, { name, kind: 'behaviour', mode: 0o600 });
  // The resolved catalogue is no secret.
  table.set('hooks', { name: 'hooks', kind: 'hooks', mode: 0o444 });
  // Only root reads it (it names paths and programs); writing nothing clears it.
  table.set('error_log', { name: 'error_log', kind: 'error_log', mode: 0o600 });
  // Audit records, a blocking stream like trace_pipe: only root reads it.
  table.set('events', { name: 'events', kind: 'events', mode: 0o400 });
  // Counts of denials per behaviour, like the hooks: no paths, no secret.
  table.set('stats', { name: 'stats', kind: 'stats', mode: 0o444 });
  return table;
}
