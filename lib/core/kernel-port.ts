// What the core needs from the kernel layer. lib/kernel implements it over
// the addon; unit tests of the core's own logic may pass a double. The real
// attach path is proven against a real kernel in the VM suite, never here.
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
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
}

export interface KernelLink {
  readonly id: number;
  readonly progId: number;
  detach(): Promise<void>;
}

export interface AttachedProgram {
  name: string;
  progId: number;
  linkId: number;
  link: KernelLink;
}

export interface KernelPort {
  /** Read the object at `path` as process `pid` resolves it (its cwd, its root). */
  readObject(pid: number, path: string): Promise<{ data: Buffer; path: string }>;
  inspect(data: Buffer, name?: string): Promise<ObjectFacts>;
  /** All or nothing: on failure nothing from this object stays attached. */
  loadAndAttach(
    data: Buffer,
    hook: string,
    opts: { globals?: Record<string, string | number>; objectName?: string },
  ): Promise<AttachedProgram[]>;
}
