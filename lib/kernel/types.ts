// The shapes the addon's kernel layer (addon/bpf_*.cc) returns, exactly.
import type { PinnedLink } from '../core/kernel-port.js';

/** One program of an object, as libbpf sees it before load. */
export interface ProgramInfo {
  /** The full name from the ELF symbol table (the kernel keeps only 15 characters). */
  name: string;
  /** The ELF section: 'lsm', 'lsm/file_open', 'lsm.s', 'socket', ... */
  section: string;
  /** libbpf_bpf_prog_type_str: 'lsm', 'socket_filter', 'kprobe', ... */
  type: string;
  /** libbpf_bpf_attach_type_str ('lsm_mac'), null when the section implies none. */
  expectedAttachType: string | null;
  isLsm: boolean;
  /** 'file_open' for SEC("lsm/file_open"); null for SEC("lsm")/SEC("lsm.s") and non-LSM programs. */
  hook: string | null;
  /** SEC("lsm.s") or SEC("lsm.s/HOOK"). */
  sleepable: boolean;
  /** Instructions in the ELF, before relocation. */
  instructions: number;
}

export interface MapInfo {
  /** As libbpf names it; internal maps are '<object name, 8 chars>.rodata' and the like. */
  name: string;
  /** libbpf_bpf_map_type_str: 'array', 'hash', 'ringbuf', ... */
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** A map libbpf made for .rodata/.data/.bss, not one the object declares. */
  internal: boolean;
}

/** A global variable from the object's BTF data sections. */
export interface GlobalInfo {
  name: string;
  /** Bytes. */
  size: number;
  /** Where it starts in its section. */
  offset: number;
  /** '.rodata' for `const volatile`, '.data', '.bss' (loadAndAttach sets all three before load). */
  section: string;
  /** 'string' for a char array, 'int'/'uint' for an integer or enum, 'other' otherwise. */
  kind: 'string' | 'int' | 'uint' | 'other';
}

export interface ObjectInfo {
  name: string;
  /** Contents of the object's "license" section ('' if it has none). */
  license: string;
  programs: ProgramInfo[];
  maps: MapInfo[];
  globals: GlobalInfo[];
}

export interface ReadResult {
  /** The whole file, read once. */
  data: Buffer;
  /** The file as this process sees it (readlink of /proc/self/fd/N). */
  path: string;
  /**
   * Set when the path named a loaded program instead of an object file (data
   * is then empty): a program pinned in bpffs, opened as the writer
   * ('pinned:PATH'), or the writer's own fd at /proc/self/fd/N ('fd:PID/N').
   */
  program?: { id: number; source: string };
  /**
   * The object libbpf opened from `data` on the reader thread (named by the
   * file's basename); unset for a program. Close it when it will not load.
   */
  object?: OpenedObject;
}

/** How an opened object loads (OpenedObject.loadAndAttach). */
export interface ObjectLoadOptions {
  /** Globals (.rodata, .data, .bss) to set before load: strings for char arrays, numbers
   * (or decimal/0x strings) for integers; '0xHEX' of exactly the global's size is raw
   * bytes for any non-integer global (char arrays, structs, arrays). */
  globals?: Record<string, string | number>;
  /** Maps to share: a map the object declares under one of these names is the
   * map pinned at the given bpffs path instead of a new one (names the object
   * lacks are ignored). The events ring: { krsi_events: '/sys/fs/bpf/krsi/events' }. */
  reuseMaps?: Record<string, string>;
  /** Every program's pin path, by program name. */
  pinPaths: Record<string, string>;
  /** Program name -> the kernel function it traces (the observer's SEC("fexit") program). */
  targets?: Record<string, string>;
  /** Program name -> where to pin the loaded program itself, so that it can be attached again without a load. */
  programPins?: Record<string, string>;
}

/** An object libbpf has opened (parsed once), not yet loaded. */
export interface OpenedObject {
  /** What the object holds: name, license, programs, maps, globals. */
  readonly facts: ObjectInfo;
  /**
   * Load every program, attach the LSM ones to `hook` and the fentry/fexit
   * companions to their functions (or `targets[name]` when given), and pin
   * each link at pinPaths[program name], all in ONE worker round trip. All or
   * nothing: on any failure, every pin this call made is removed and every
   * link closed. Returns no fds: the pins hold the links. A second call:
   * EALREADY (an object loads once). The object is closed after.
   * Errors: EINVAL no program, a non-LSM program, a program for another hook,
   * a hook the kernel lacks, a bad global; the kernel's errno for a refused
   * load (verifierLog holds the log; EPERM where BPF LSM is not permitted),
   * attach (E2BIG: too many on the hook; details.program names the program)
   * or pin; EOPNOTSUPP (details.returnsVoid) an fexit target that returns void.
   */
  loadAndAttach(hook: string, opts: ObjectLoadOptions): Promise<MadeLink[]>;
  /** Free libbpf's object now (also done by GC). Twice is a no-op. */
  close(): void;
}

/** A link krsifs made and pinned (attachProgram, loadAndAttach). */
export interface MadeLink {
  /** The program's name: libbpf's for an object's, the kernel's (15 characters at most) for attachProgram's. */
  name: string;
  progId: number;
  linkId: number;
}

export interface LinkInfo {
  id: number;
  progId: number;
  /** libbpf_bpf_link_type_str: an LSM link is 'tracing'. */
  type: string;
  /** 'lsm_mac' for an LSM link; null for non-tracing links. */
  attachType: string | null;
  targetObjId: number | null;
  targetBtfId: number | null;
  /** The LSM hook (target BTF func, 'bpf_lsm_' stripped) or null. */
  hook: string | null;
}

export interface ProgInfo {
  id: number;
  /** The kernel's copy of the name: at most 15 characters. */
  name: string;
  type: string;
  /** 16 hex digits. */
  tag: string;
  /** Nanoseconds since boot. */
  loadTimeNs: bigint;
  uid: number;
  btfId: number;
  attachBtfId: number;
  /** For LSM programs, the hook they were loaded for. */
  hook: string | null;
  gplCompatible: boolean;
}

export interface ProbeChecks {
  kernelRelease: string;
  /** /sys/kernel/btf/vmlinux exists. */
  btf: boolean;
  /** 'mounted' (already), 'mounted-now' (the probe mounted it), 'unavailable'. */
  securityfs: 'mounted' | 'mounted-now' | 'unavailable';
  /** Active LSMs from /sys/kernel/security/lsm, null if unreadable. */
  lsm: string[] | null;
  bpfLsmActive: boolean;
  /** Selected lockdown mode ('none', 'integrity', 'confidentiality') or null. */
  lockdown: string | null;
  /** The live load of `r0 = 0; exit` as an LSM program on bprm_check_security. */
  load: { tried: boolean; ok: boolean; errno?: number; code?: string };
}

export interface ProbeResult {
  /** True when an LSM program loaded. */
  ok: boolean;
  errno?: number;
  code?: string;
  /** What was found, in words a user can act on. */
  reason: string;
  /** What to do about it. */
  fix?: string;
  checks: ProbeChecks;
}

/**
 * A link pinned in bpffs, as pinnedLinks() reads it: the core's PinnedLink
 * before its mode record is read, and `foreign` set when the pin is neither an
 * LSM link nor a companion's (a map, a program, another link type): why.
 */
export type PinnedLinkInfo = Omit<PinnedLink, 'mode'> & { foreign?: string };
