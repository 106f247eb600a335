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

/** An object the kernel layer opened (parsed once) as it read it, not loaded yet. */
export interface OpenedObjectRef {
  readonly facts: ObjectFacts;
  /** Free it (it will not load). Twice is a no-op. */
  close(): void;
}

/** A link this process holds an fd of. */
export interface KernelLink {
  readonly id: number;
  readonly progId: number;
  /** Close the fd: an unpinned link is detached, a pinned one stays. */
  close(): Promise<void>;
  /** Unpin if pinned, then close. */
  detach(): Promise<void>;
}

/** A program just attached, with its link (the kernel layer's own link type where it has one). */
export interface AttachedProgram<L extends KernelLink = KernelLink> {
  name: string;
  progId: number;
  linkId: number;
  link: L;
  /** The temporary pin the link already has (attachProgram pins as it attaches); unset: not pinned yet. */
  pinned?: string;
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
  /** The kernel's copy of the program name (15 characters at most). */
  progName: string;
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

export interface KernelPort {
  /**
   * Read the object at `path` as the writer resolves it (its root, its cwd)
   * and with its file access rights. `signal` aborts the wait (EINTR) when the
   * writer is being killed; the read itself may finish later and is dropped.
   */
  readObject(
    writer: Credentials,
    path: string,
    signal?: AbortSignal,
  ): Promise<{ data: Buffer; path: string; program?: LoadedProgramRef; object?: OpenedObjectRef }>;
  /** Open the bytes again (an object loads once: a second attempt needs its own). */
  openObject(data: Buffer, name: string): Promise<OpenedObjectRef>;
  /** A loaded program's facts. Errors: ENOENT no program has this id. */
  programInfo(id: number): Promise<LoadedProgramFacts>;
  /**
   * Attach loaded program `id` (an LSM program loaded for `hook`) by a new
   * link of our own, pinned at once as `pin` in the behaviour's directory.
   */
  attachProgram(id: number, hook: string, behaviour: string, pin: string): Promise<AttachedProgram>;
  /**
   * Load, attach and pin every program of `object` (each at pins[name] in the
   * behaviour's directory), in one round trip; the results come pinned. All
   * or nothing: on failure nothing from this object stays attached or pinned.
   */
  loadAndAttach(
    object: OpenedObjectRef,
    hook: string,
    behaviour: string,
    opts: { globals?: Record<string, string | number>; reuseMaps?: Record<string, string>; pins: Record<string, string> },
  ): Promise<AttachedProgram[]>;

  // The pins are the registry: one directory per behaviour under the pin
  // root, one link pin per program, named by its full name.

  /** The pin root (for messages: where an operator finds the pins). */
  readonly pinRoot: string;
  /** Create the behaviour's pin directory. Errors: why pins are impossible here (no bpffs, …). */
  ensurePinDir(behaviour: string): Promise<void>;
  /** Pin `link` as `name` in the behaviour's directory. Errors: EEXIST, the pin root's error. */
  pin(link: KernelLink, behaviour: string, name: string): Promise<void>;
  /**
   * rename(2) pin `from` over `to`: a link pinned at `to` loses its pin in the
   * same step. Resolves once the kernel has let that link go (if it had no
   * other holder); null when `to` was free.
   */
  renamePin(behaviour: string, from: string, to: string): Promise<Unpinned | null>;
  /** Remove pin `name`; resolves once the kernel has let the link go. Errors: ENOENT no such pin. */
  unpin(behaviour: string, name: string): Promise<Unpinned>;
  /**
   * The behaviour's pins (temporary ones included) as the kernel has them now,
   * sorted by link id; a pin removed while they are read is left out; [] when
   * the directory is missing.
   */
  pins(behaviour: string): Promise<PinnedLink[]>;
  /** The directories under the pin root: the behaviours that have (or had) pins. */
  pinnedBehaviours(): Promise<string[]>;
  /** How many links the kernel holds on `hook` (LSM links and fentry/fexit on bpf_lsm_<hook>), anyone's. */
  linksOnHook(hook: string): Promise<number>;

  // The denial observer (bpf/krsi_observer.bpf.c): one per behaviour with
  // programs, pinned apart from them, and its counters.

  /** The behaviour's observer link, or null when it has none. */
  observer(behaviour: string): Promise<{ linkId: number } | null>;
  /**
   * Attach the behaviour's observer on `hook`, pinned (a stale one is
   * replaced). Errors: EOPNOTSUPP with details.returnsVoid the hook returns void, E2BIG the hook is
   * full, ENOENT no observer object or shared maps.
   */
  attachObserver(behaviour: string, hook: string): Promise<{ linkId: number }>;
  /** Remove the observer and the behaviour's counters; false when it had no observer. */
  detachObserver(behaviour: string): Promise<boolean>;
  /** The behaviours that have an observer pinned. */
  observedBehaviours(): Promise<string[]>;
  /** The behaviour's counters (bpf/krsi_verdict.h) since its first attach; zeros when none. */
  counts(behaviour: string): Promise<{ denied: number; monitored: number }>;

  /**
   * Remember the object a link's program came from (for the listing), the
   * mode it was attached in and, when given, the digest of its bytes and
   * settings (lib/core/digest.ts: a declared policy attached from the same
   * is kept as it is).
   */
  recordObject(linkId: number, object: string, mode: Mode, digest?: string): Promise<void>;
  /** Forget the object (mode, digest) of link `linkId` (it was detached). */
  forgetObject(linkId: number): Promise<void>;
  /** Forget the objects of links that are not in `live`. */
  pruneObjects(live: ReadonlySet<number>): Promise<void>;
}
