// Opened objects (addon/bpf_object.cc): the facts libbpf read when it opened
// the bytes, and the one load of the object. Everything that needs no libbpf
// is here: what a section means, the checks of an object against a hook, the
// globals encoded to the bytes the addon copies, and the words of a failure
// (the verifier log trimmed to its cause).
import { endianness } from 'node:os';
import { native } from '../addon.js';
import { KrsiError } from '../errors.js';
import { companionOf } from '../core/companion.js';
import { hasHook } from './hooks.js';
import type { GlobalInfo, MadeLink, ObjectInfo, ObjectLoadOptions, OpenedObject, ProgramInfo } from './types.js';

/** The facts as the addon gives them: what libbpf knows, before this file reads the sections. */
interface NativeFacts {
  name: string;
  programs: Omit<ProgramInfo, 'isLsm' | 'hook' | 'sleepable'>[];
  maps: ObjectInfo['maps'];
  globals: GlobalInfo[];
}

interface NativeHandle {
  load(
    hook: string,
    opts: {
      globals: [string, number, Buffer][];
      reuseMaps: [string, string][];
      pins: [string, string][];
      programPins: [string, string][];
      targets: [string, string][];
    },
  ): Promise<MadeLink[]>;
  close(): void;
}

/** What the addon's readObject and openObject hand over for an opened object. */
export interface NativeOpened {
  facts: NativeFacts;
  handle: NativeHandle;
}

const LSM_SECTION = /^lsm(\.s)?(?:\/(.+))?$/;

function programOf(p: NativeFacts['programs'][number]): ProgramInfo {
  const isLsm = p.type === 'lsm';
  const m = isLsm ? LSM_SECTION.exec(p.section) : null;
  return { ...p, isLsm, hook: m?.[2] ?? null, sleepable: m?.[1] !== undefined };
}

// e_machine values an object compiled for the wrong target may carry (elf.h).
const MACHINES: Record<number, string> = { 62: 'x86-64', 3: 'i386', 183: 'aarch64', 40: 'arm', 243: 'risc-v', 21: 'ppc64', 22: 's390', 0: 'none' };
const EM_BPF = 247;
const ET_REL = 1;

/**
 * Why `d` is not a 64-bit relocatable BPF ELF object ('' when it is one),
 * from its ELF header: checked before libbpf's own refusal is used, whose
 * words ("malformed") would not say what is wrong.
 */
export function elfProblem(d: Buffer): string {
  if (d.length < 16 || d.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file';
  if (d.length < 64 || d[4] !== 2 || (d[5] !== 1 && d[5] !== 2)) return 'ELF but not a BPF object (not a 64-bit ELF)';
  const u16 = (o: number) => (d[5] === 1 ? d.readUInt16LE(o) : d.readUInt16BE(o));
  if (u16(18) !== EM_BPF) return `ELF but not a BPF object (machine ${MACHINES[u16(18)] ?? u16(18)})`;
  if (u16(16) !== ET_REL) return 'BPF ELF but not a relocatable object (compile with clang -c)';
  return '';
}

/** ENOEXEC for bytes that are no BPF object, in the words elfProblem gives. */
export function notAnObject(problem: string, object?: string): KrsiError {
  return new KrsiError('ENOEXEC', `open object: ${problem}`, object === undefined ? {} : { details: { object } });
}

/** The last line libbpf printed that says something, without its "libbpf: " prefix ('' if none). */
export function libbpfLastLine(log: string): string {
  for (const raw of log.split('\n').reverse()) {
    const line = raw.replace(/ +$/, '').replace(/^libbpf: /, '');
    // libbpf's own "failed to load object" summary says less than the line before it
    if (line !== '' && !line.includes('failed to load object')) return line;
  }
  return '';
}

/**
 * The addon's failure to open bytes whose ELF header is sound (libbpf's log
 * in details.libbpf): a malformed object. libbpf says ENOENT, ERANGE,
 * EINVAL, ... depending on what it tripped over ("No such file" or "Numerical
 * result out of range" would mislead a shell user): all become ENOEXEC,
 * keeping libbpf's words and errno in the message; only ENOMEM is passed through.
 */
export function openFailure(e: KrsiError, object?: string): KrsiError {
  const details = object === undefined ? {} : { details: { object } };
  if (e.code === 'ENOMEM') return new KrsiError(e.errno, e.message, details);
  const cause = libbpfLastLine(typeof e.details.libbpf === 'string' ? e.details.libbpf : '') || e.message.replace(/^open object: /, '');
  return new KrsiError('ENOEXEC', `open object: malformed BPF object: ${cause} (libbpf: ${e.code})`, details);
}

/**
 * The NUL-terminated contents of the ELF section named "license" ('' if none):
 * libbpf (1.1) has no getter for it. A little-endian 64-bit ELF (libbpf
 * opened it, so the header is sound); anything out of bounds reads as none.
 */
export function licenseOf(d: Buffer): string {
  if (d.length < 64 || d[5] !== 1) return '';
  const u16 = (o: number) => (o + 2 <= d.length ? d.readUInt16LE(o) : 0);
  const u32 = (o: number) => (o + 4 <= d.length ? d.readUInt32LE(o) : 0);
  const u64 = (o: number) => (o + 8 <= d.length ? Number(d.readBigUInt64LE(o)) : 0);
  const shoff = u64(0x28);
  const shentsize = u16(0x3a), shnum = u16(0x3c), shstrndx = u16(0x3e);
  if (shentsize < 64 || shoff >= d.length || shstrndx >= shnum) return '';
  const sh = (i: number) => shoff + i * shentsize;
  const strOff = u64(sh(shstrndx) + 0x18);
  const cstr = (from: number, end: number) => {
    const z = d.indexOf(0, from);
    return d.subarray(from, z < 0 || z > end ? end : z).toString('latin1');
  };
  for (let i = 0; i < shnum && sh(i) + 64 <= d.length; i++) {
    const nameOff = strOff + u32(sh(i));
    if (nameOff >= d.length || d.indexOf(0, nameOff) < 0 || cstr(nameOff, d.length) !== 'license') continue;
    const off = u64(sh(i) + 0x18), size = u64(sh(i) + 0x20);
    if (off > d.length || size > d.length - off) return '';
    return cstr(off, off + size);
  }
  return '';
}

/** Wrap what the addon opened (data: the bytes it opened, for the license). */
export function wrapOpened(raw: NativeOpened, data: Buffer): OpenedObject {
  const f = raw.facts;
  const facts: ObjectInfo = { name: f.name, license: licenseOf(data), programs: f.programs.map(programOf), maps: f.maps, globals: f.globals };
  return new Opened(facts, raw.handle);
}

/**
 * Open `data` with libbpf on the libuv pool (`name`: the object name libbpf
 * uses, the prefix of its internal maps). Errors: ENOEXEC not ELF / not a BPF
 * object / malformed; ENOMEM.
 */
export async function openObject(data: Buffer, name?: string): Promise<OpenedObject> {
  const problem = elfProblem(data);
  if (problem) throw notAnObject(problem);
  const raw = (await (name === undefined ? native.openObject(data) : native.openObject(data, name)).catch((e: unknown) => {
    throw e instanceof KrsiError ? openFailure(e) : e;
  })) as NativeOpened;
  return wrapOpened(raw, data);
}

/**
 * Loads in the verifier at once. Each runs on a thread of its own (the
 * addon's OnOwnThread), never on libuv's pool, whose threads the quick calls
 * of every other request need (a detach's unlink, link info). As many as the
 * pool had when loads ran there: each holds libbpf's parse of the kernel's
 * BTF (megabytes), and the verifier's work is CPU that more at once would
 * only share. The others wait here, in order of arrival.
 */
export const LOAD_SLOTS = 4;
let loadsRunning = 0;
const loadsWaiting: (() => void)[] = [];

async function inLoadSlot<T>(load: () => Promise<T>): Promise<T> {
  if (loadsRunning < LOAD_SLOTS) loadsRunning++;
  else await new Promise<void>((take) => loadsWaiting.push(take));
  try {
    return await load();
  } finally {
    // the slot passes to the first one waiting, or is free
    const next = loadsWaiting.shift();
    if (next) next();
    else loadsRunning--;
  }
}

class Opened implements OpenedObject {
  private used = false;

  constructor(readonly facts: ObjectInfo, private readonly handle: NativeHandle) {}

  async loadAndAttach(hook: string, opts: ObjectLoadOptions): Promise<MadeLink[]> {
    if (this.used) throw new KrsiError('EALREADY', 'load object: this object was loaded already (an object loads once)');
    this.used = true;
    try {
      return await this.load(hook, opts);
    } finally {
      this.close();
    }
  }

  private async load(hook: string, opts: ObjectLoadOptions): Promise<MadeLink[]> {
    const targets = opts.targets ?? {};
    const known = await hasHook(hook).catch((e: unknown) => {
      const err = KrsiError.from(e);
      throw new KrsiError(err.errno, `load object: cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): ${err.message}`);
    });
    if (!known) {
      throw new KrsiError('EINVAL', `load object: no LSM hook named '${hook}' in this kernel (no bpf_lsm_${hook} in its BTF)`, { details: { hook } });
    }
    const onHook = checkPrograms(this.facts.programs, hook, targets);
    const globals = encodeGlobals(this.facts.globals, opts.globals ?? {});
    const pins: [string, string][] = [];
    for (const p of this.facts.programs) {
      const at = opts.pinPaths[p.name];
      if (typeof at !== 'string') throw new TypeError(`loadAndAttach: no pin path for program ${p.name}`);
      pins.push([p.name, at]);
    }
    try {
      return await inLoadSlot(() =>
        this.handle.load(hook, {
          globals,
          reuseMaps: Object.entries(opts.reuseMaps ?? {}),
          pins,
          programPins: Object.entries(opts.programPins ?? {}),
          targets: Object.entries(targets),
        }),
      );
    } catch (e) {
      throw failure(KrsiError.from(e), hook, this.facts.programs, onHook, targets);
    }
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * The programs that go on the hook itself. Every other program must be a
 * fentry/fexit companion (core/companion.ts) or have a target of its own.
 */
function checkPrograms(programs: ProgramInfo[], hook: string, targets: Record<string, string>): ProgramInfo[] {
  const einval = (p: ProgramInfo | null, msg: string) =>
    new KrsiError('EINVAL', `load object: ${msg}`, { details: p ? { hook, program: p.name } : { hook } });
  const onHook = programs.filter((p) => companionOf(p) === null && targets[p.name] === undefined);
  for (const p of onHook) {
    if (!p.isLsm) {
      throw einval(p, `program ${p.name} is a ${p.type} program (SEC("${p.section}")): an object attached to a hook ` +
        'may hold only LSM programs and fentry/fexit companions');
    }
    if (p.hook !== null && p.hook !== hook) {
      throw einval(p, `program ${p.name} is for hook ${p.hook} (SEC("${p.section}")), not for this file's hook ${hook}`);
    }
  }
  if (onHook.length === 0 && Object.keys(targets).length === 0) {
    throw einval(null, programs.length > 0 ? 'no LSM program in the object (its fentry/fexit companions need one)' : 'no program in the object');
  }
  return onHook;
}

/** Lines of a log, without the empty ones at its end. */
export function splitLines(s: string): string[] {
  const out = s.split('\n');
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

const isStat = (l: string) =>
  l === '' || l.startsWith('processed ') || l.startsWith('verification time') || l.startsWith('stack depth') ||
  l.startsWith('-- END PROG LOAD LOG --');

/**
 * The line or two of a verifier log that say why, without the statistics the
 * kernel prints last, plus how much was left out.
 */
export function logSummary(log: string[]): string {
  let end = log.length;
  while (end > 0 && isStat(log[end - 1]!)) end--;
  if (end === 0) return '';
  const start = Math.max(0, end - 2);
  const omitted = log.length - (end - start);
  return log.slice(start, end).join(' ') + (omitted > 0 ? ` (${omitted} lines omitted)` : '');
}

/** The program libbpf was loading when it failed: "prog 'NAME': ..." in its log. */
export function failedProgram(libbpfLog: string): string {
  return /prog '([^']*)'/.exec(libbpfLog)?.[1] ?? '';
}

/** The addon's failure of a load, in words: which program, and why. */
function failure(err: KrsiError, hook: string, programs: ProgramInfo[], onHook: ProgramInfo[], targets: Record<string, string>): KrsiError {
  const d = err.details;
  const details: Record<string, unknown> = { hook };
  for (const k of ['program', 'returnsVoid'] as const) if (d[k] !== undefined) details[k] = d[k];
  if (d.stage === 'load') {
    const log = splitLines(typeof d.log === 'string' ? d.log : '');
    let prog = failedProgram(typeof d.libbpf === 'string' ? d.libbpf : '');
    if (prog === '' && onHook.length === 1) prog = programs[0]!.name;
    let cause = logSummary(log);
    if (cause === '') {
      cause = err.message.replace(/^load object: /, '');
      const last = libbpfLastLine(typeof d.libbpf === 'string' ? d.libbpf : '');
      if (err.code === 'EPERM') cause += ' (BPF LSM programs are not permitted on this kernel, even for root: see `krsifs doctor`)';
      else if (prog === '' && last !== '') cause += ` (${last})`;
    }
    if (prog !== '') details.program = prog;
    return new KrsiError(err.errno, `${prog ? `load program ${prog}` : 'load object'}: ${cause}`, { verifierLog: log, details });
  }
  if (d.stage === 'attach') {
    const p = programs.find((x) => x.name === d.program);
    const target = p && targets[p.name] !== undefined ? `${p.expectedAttachType === 'trace_fexit' ? 'fexit' : 'fentry'}:${targets[p.name]}` : null;
    const where = target ?? (p ? companionOf(p) : null);
    let cause = err.message;
    if (err.code === 'E2BIG') cause += where ? " (the kernel's limit of programs on one function is reached)" : " (the kernel's limit of programs on one hook is reached)";
    return new KrsiError(err.errno, `attach program ${String(d.program)} to ${where ?? hook}: ${cause}`, { details });
  }
  // a pin: all or nothing held, what was pinned is gone again
  return new KrsiError(err.errno, err.message, { verifierLog: err.verifierLog, details: { ...d, ...details } });
}

const settable = (g: GlobalInfo) => /^\.(rodata|data|bss)/.test(g.section);
const isHexBytes = (s: string) => /^0[xX]([0-9a-fA-F]{2})+$/.test(s);

/**
 * Each KEY=VALUE as the bytes of its global, where the addon copies them
 * (section, offset). Strings for char arrays, numbers (or decimal/0x strings)
 * for integers, 0xHEX of exactly the global's size as raw bytes for any
 * non-integer global. EINVAL naming the global on an unknown name, a wrong
 * type, a value out of range or too long.
 */
export function encodeGlobals(all: GlobalInfo[], values: Record<string, string | number>): [string, number, Buffer][] {
  const out: [string, number, Buffer][] = [];
  for (const [name, v] of Object.entries(values)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw new TypeError(`loadAndAttach: global ${name} must be a string or a number`);
    const g = all.filter((c) => c.name === name && settable(c)).pop();
    if (!g) {
      const have = all.filter(settable).map((c) => c.name).join(', ') || 'none';
      throw new KrsiError('EINVAL', `set global: no global named ${name} in object (have: ${have})`, { details: { global: name } });
    }
    const fail = (msg: string) => new KrsiError('EINVAL', `set global ${name}: ${msg}`, { details: { global: name, size: g.size } });
    const isInt = g.kind === 'int' || g.kind === 'uint';
    // a string global's 0xHEX is raw only at its exact size: as text it would be longer than the array anyway
    const raw = typeof v === 'string' && isHexBytes(v) ? Buffer.from(v.slice(2), 'hex') : null;
    if (!isInt && raw && (g.kind !== 'string' || raw.length === g.size)) {
      if (raw.length !== g.size) {
        throw fail(`0x value is ${raw.length} bytes, the global is ${g.size} (raw bytes must be its exact size)`);
      }
      out.push([g.section, g.offset, raw]);
    } else if (g.kind === 'other') {
      throw fail(`a ${g.size}-byte global that is neither an integer nor a char array takes raw bytes only: ` +
        `${name}=0x followed by ${g.size * 2} hex digits`);
    } else if (g.kind === 'string') {
      if (typeof v === 'number' && !Number.isInteger(v)) throw fail('expected a string');
      const s = Buffer.from(typeof v === 'number' ? String(v) : v);
      if (s.includes(0)) throw fail('value contains a NUL byte');
      if (s.length + 1 > g.size) throw fail(`value is ${s.length} bytes, more than its capacity of ${g.size - 1} (char[${g.size}])`);
      const b = Buffer.alloc(g.size);
      s.copy(b);
      out.push([g.section, g.offset, b]);
    } else {
      out.push([g.section, g.offset, encodeInt(g, v, fail)]);
    }
  }
  return out;
}

const INT = /^(?:[+-]?([0-9]+)|(0[xX][0-9a-fA-F]+))$/;

function encodeInt(g: GlobalInfo, v: string | number, fail: (msg: string) => KrsiError): Buffer {
  if (![1, 2, 4, 8].includes(g.size)) {
    throw fail(`only integer and char-array globals can be set (this one is ${g.size} bytes of another type)`);
  }
  const signed = g.kind === 'int';
  let n: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw fail('not an integer');
    if (!signed && v < 0) throw fail(`${v} is negative, the global is unsigned`);
    n = BigInt(v);
  } else {
    // as strtoll/strtoull would take it whole: decimal, or 0x hex; a sign only where it may be
    const m = INT.exec(v);
    const neg = v.startsWith('-');
    if (!m || (!signed && neg)) throw fail(`'${v}' is not ${signed ? 'an integer' : 'an unsigned integer'}`);
    n = m[2] !== undefined ? BigInt(m[2]) : BigInt(m[1]!) * (neg ? -1n : 1n);
    const limit = signed ? 1n << 63n : 1n << 64n;
    if (n >= limit || n < (signed ? -limit : 0n)) throw fail(`'${v}' is not ${signed ? 'an integer' : 'an unsigned integer'}`);
  }
  const bits = BigInt(g.size * 8);
  const fits = signed ? n >= -(1n << (bits - 1n)) && n < 1n << (bits - 1n) : n < 1n << bits;
  if (!fits) throw fail(`${typeof v === 'number' ? String(v) : v} does not fit in ${signed ? 'a signed' : 'an unsigned'} ${bits}-bit integer`);
  // host byte order: objects are built for the machine they are loaded on
  const b = Buffer.alloc(8);
  if (endianness() === 'LE') b.writeBigUInt64LE(BigInt.asUintN(64, n));
  else b.writeBigUInt64BE(BigInt.asUintN(64, n));
  return endianness() === 'LE' ? b.subarray(0, g.size) : b.subarray(8 - g.size);
}
