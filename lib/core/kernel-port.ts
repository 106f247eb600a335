// What the core needs from the kernel layer. lib/kernel implements it over
// the addon and bpffs (lib/kernel/port.ts); unit tests of the core's own
// logic may pass a double. The real attach path is proven against a real
// kernel in the VM suite, never here.
import type { Mode } from './grammar.js';

/**
 * The credentials of the task behind a request (lib/kernel/proc.ts reads
 * them), checked before anything is done on its behalf, and used to resolve
 * and open its paths with its own rights.
 */
export interface Credentials {
  /** The task (thread) id the kernel named in the request. */
  pid: number;
  /** Its process (thread group). */
  tgid: number;
  uid: number;
  gid: number;
  /** The ids the kernel checks file access with. */
  fsuid: number;
  fsgid: number;
  groups: number[];
  /** Effective capabilities, relative to the task's own user namespace. */
  capEff: bigint;
  /**
   * The task is in the daemon's user namespace (the initial one): only then do
   * its capabilities mean anything here. Root in a user namespace of its own
   * shows a full CapEff and holds nothing in ours.
   */
  inDaemonUserNs: boolean;
  comm: string;
}

export interface ProgramFacts {
  name: string;
  section: string;
  type: string;
  isLsm: boolean;
  /** The hook a SEC("lsm/HOOK") program names; null for SEC("lsm")/SEC("lsm.s"). */
  hook: string | null;
  sleepable: boolean;
}

export interface ObjectFacts {
  license: string;
  programs: ProgramFacts[];
  globals: { name: string; size: number; section: string }[];
  /** Its maps by name (a shared one, such as bpf/krsi_events.h's ring, is reused at load). */
  maps: { name: string }[];
}

/** What the kernel says about a loaded program (by id). */
export interface LoadedProgramFacts {
  /** The kernel's name: 15 characters at most, maybe empty. */
  name: string;
  /** 'lsm', 'socket_filter', … */
  type: string;
  /** The hook an LSM program was loaded for (its attach_btf_id); null otherwise. */
  hook: string | null;
}

/** A loaded program named by a line instead of an object file. */
export interface LoadedProgramRef {
  id: number;
  /** For the listing's object=: 'pinned:PATH', 'id:N', 'fd:PID/N'. */
  source: string;
}

/** One pin in a behaviour's pin directory, and what the kernel says about its link. */
export interface PinnedLink {
  /** The pin's file name: the program's full name ('NAME-new', 'NAME-commit' for an attach in flight). */
  name: string;
  linkId: number;
  progId: number;
  /** The hook the link really runs on (from its target BTF id): an LSM hook, or a companion's 'fexit:FUNC'; null when unknown. */
  hook: string | null;
  /** The object the program came from, as its writer resolved it; null when unknown. */
  object: string | null;
  /** The mode it was attached in; enforce when none was recorded (a program another loader loaded, an older krsifs). */
  mode: Mode;
}

/** A pin that was removed (or replaced), and whether the kernel has let its link go. */
export interface Unpinned {
  pin: PinnedLink;
  /** False when something else (another process's fd) still holds the link after a wait. */
  released: boolean;
}

/** What a line's path named, read as its writer: an object file, or a program another loader loaded. */
export interface ObjectSource {
  /** The file as the writer's path resolved, or the loaded program's source ('pinned:PATH', …). */
  path: string;
  /** The file's bytes, read once (empty for a loaded program). */
  data: Buffer;
  /** An object file: what it holds, read when it was read (libbpf parsed it once). */
  facts?: ObjectFacts;
  /** A loaded program instead of an object file. */
  program?: LoadedProgramRef;
  /** Let go of what the kernel layer holds for it (the parsed object). Twice is a no-op. */
  close(): void;
}

/** One attach, as the core decided it: the adapter does it all or not at all. */
export interface AttachRequest {
  behaviour: string;
  hook: string;
  /** What the listing's object= shows: the resolved path, or a loaded program's source. */
  object: string;
  mode: Mode;
  /** Of the bytes and settings (lib/core/digest.ts), for objects: hashed while they load, recorded at the commit. */
  digest?: Promise<string>;
  /** Every global set at load: the line's and krsifs's own. */
  globals: Record<string, string>;
  /** Shared maps by name, and where they are pinned. */
  reuseMaps?: Record<string, string>;
  /** A loaded program's pin name (loadedName); an object's programs keep their own names. */
  name?: string;
}

/** What an attach did: the programs now pinned, and the same-named ones they replaced. */
export interface Attachment {
  attached: PinnedLink[];
  replaced: Unpinned[];
}

/** What start-up did with an attach a crash interrupted. */
export interface Recovered {
  behaviour: string;
  /** The temporary pin found. */
  pin: PinnedLink;
  /** finished: renamed to its final name (the attach had committed); removed: it had not; failed: left as it is. */
  outcome: 'finished' | 'removed' | 'failed';
  /** finished: the program of the same name it replaced. */
  replaced?: PinnedLink;
  error?: string;
}

/**
 * The kernel as the core sees it: transactions on a behaviour's programs
 * (attach, detach, list, recover), the denial observer and its counters.
 * lib/kernel/port.ts does them over the addon and bpffs; how programs stay
 * attached (pins), what is recorded beside them and how a crash is survived
 * is its business, not the core's.
 */
export interface KernelPort {
  /** Where the pins are (for messages: where an operator finds them). */
  readonly pinRoot: string;
  /**
   * Read what `path` names as the writer resolves it (its root, its cwd) and
   * with its file access rights, and parse it. `signal` aborts the wait
   * (EINTR) when the writer is being killed. Errors: the writer's own open's,
   * ENOEXEC not a BPF object, …
   */
  readObject(writer: Credentials, path: string, signal?: AbortSignal): Promise<ObjectSource>;
  /** A loaded program's facts. Errors: ENOENT no program has this id. */
  programInfo(id: number): Promise<LoadedProgramFacts>;
  /**
   * Attach every program of `source` for `req.behaviour`, each replacing the
   * program of the same name there without leaving the hook unguarded; all or
   * nothing, across a crash of the daemon too. Errors: the kernel's (E2BIG
   * with details.program: the program the hook had no room for).
   */
  attach(source: ObjectSource, req: AttachRequest): Promise<Attachment>;
  /** Detach program `name`; resolves once the kernel has let it go. Errors: ENOENT no such program. */
  detach(behaviour: string, name: string): Promise<Unpinned>;
  /** The behaviour's programs as the kernel has them now, in attach order; [] when none. */
  list(behaviour: string): Promise<PinnedLink[]>;
  /** The behaviours that have (or had) programs. */
  pinnedBehaviours(): Promise<string[]>;
  /** Start-up: settle the attaches a crash interrupted, forget what is recorded of links that are gone. */
  recover(): Promise<Recovered[]>;
  /** How many links the kernel holds on `hook` (LSM links and fentry/fexit on bpf_lsm_<hook>), anyone's. */
  linksOnHook(hook: string): Promise<number>;
  /** The digest recorded at link `linkId`'s attach; null when none was. */
  digestOf(linkId: number): Promise<string | null>;

  // The denial observer (bpf/krsi_observer.bpf.c): one per behaviour with
  // programs, and its counters.

  /** Does the behaviour have its observer? */
  hasObserver(behaviour: string): Promise<boolean>;
  /**
   * Attach the behaviour's observer on `hook` (a stale one is replaced).
   * Errors: EOPNOTSUPP with details.returnsVoid the hook returns void, E2BIG
   * the hook is full, ENOENT no observer object or shared maps.
   */
  attachObserver(behaviour: string, hook: string): Promise<{ linkId: number }>;
  /** Remove the observer and the behaviour's counters; false when it had no observer. */
  detachObserver(behaviour: string): Promise<boolean>;
  /** The behaviours that have an observer. */
  observedBehaviours(): Promise<string[]>;
  /** The behaviour's counters (bpf/krsi_verdict.h) since its first attach; zeros when none. */
  counts(behaviour: string): Promise<{ denied: number; monitored: number }>;
}
