// krsifs's denial observer (bpf/krsi_observer.bpf.c), its TypeScript side:
// what each hook's arguments name (the one table of it), how an observer's
// record is completed before it is printed, and the `stats` file's lines.
// Plain TypeScript: the kernel is a port.
import type { EventRecord } from './events.js';

/** The observer's global that says how to read the hook's arguments. */
export const SUBJECT_GLOBAL = 'krsi_subject';

/** KRSI_SUBJECT_* in bpf/krsi_observer.bpf.c. */
export const SUBJECT = {
  /** no subject field */
  none: 0,
  /** arg 0 a struct linux_binprm *: file=bprm->filename */
  bprm: 1,
  /** arg 0 a struct file * (NULL for some): file=its full path */
  file: 2,
  /** arg 1 a struct dentry *: file=its name */
  dentry: 3,
  /** arg 0 a struct task_struct *: target=its pid */
  task: 4,
} as const;
export type SubjectKind = keyof typeof SUBJECT;

// Hooks not named here get no subject field: their arguments name nothing a
// reader would look for, or nothing the observer can read safely.
const SUBJECTS: Readonly<Record<string, SubjectKind>> = {
  bprm_check_security: 'bprm',
  bprm_creds_for_exec: 'bprm',
  bprm_creds_from_file: 'bprm',
  file_open: 'file',
  file_permission: 'file',
  file_ioctl: 'file',
  file_lock: 'file',
  file_fcntl: 'file',
  file_receive: 'file',
  file_truncate: 'file',
  mmap_file: 'file',
  kernel_read_file: 'file',
  path_unlink: 'dentry',
  path_rmdir: 'dentry',
  path_mkdir: 'dentry',
  path_mknod: 'dentry',
  path_symlink: 'dentry',
  path_rename: 'dentry',
  inode_unlink: 'dentry',
  inode_rmdir: 'dentry',
  inode_mkdir: 'dentry',
  inode_create: 'dentry',
  inode_rename: 'dentry',
  task_kill: 'task',
  ptrace_access_check: 'task',
  task_setnice: 'task',
  task_setscheduler: 'task',
};

export function subjectOf(hook: string): SubjectKind {
  return Object.hasOwn(SUBJECTS, hook) ? SUBJECTS[hook]! : 'none';
}

/** The record's program when the observer sent it and the behaviour's programs are `programs`. */
export function denierName(programs: readonly string[]): string {
  return programs.length === 1 ? programs[0]! : '?';
}

/**
 * An observer's record as printed: the program that denied (when the
 * behaviour has exactly one, it is that one; else `?`). Its errno is named
 * as every record's is (formatRecord).
 */
export function completeObserved(r: EventRecord, programs: readonly string[]): EventRecord {
  return { ...r, program: denierName(programs) };
}

/** One behaviour's line in `stats`. */
export interface BehaviourStats {
  behaviour: string;
  hook: string;
  programs: number;
  denied: number;
  monitored: number;
}

export function formatStats(rows: readonly BehaviourStats[]): string {
  return rows
    .map((r) => `${r.behaviour}\t${r.hook}\tprograms=${r.programs}\tdenied=${r.denied}\tmonitored=${r.monitored}\n`)
    .join('');
}

/** struct krsi_counts (bpf/krsi_verdict.h), as mapLookup returns it. */
export function decodeCounts(value: Buffer | null): { denied: number; monitored: number } {
  if (value === null || value.length < 16) return { denied: 0, monitored: 0 };
  return { denied: Number(value.readBigUInt64LE(0)), monitored: Number(value.readBigUInt64LE(8)) };
}
