// What a behaviour file takes, checked before the kernel sees anything: an
// object's programs and globals (facts libbpf read), and a program another
// loader loaded (facts the kernel gave).
import { KrsiError } from '../errors.js';
import type { ResolvedBehaviour } from './catalogue.js';
import { companionOf } from './companion.js';
import { KRSIFS_GLOBALS, MONITOR_GLOBAL } from './globals.js';
import type { Mode } from './grammar.js';
import type { LoadedProgramFacts, ObjectFacts } from './kernel-port.js';

export interface Target {
  behaviour: string;
  hook: string;
  catalogue: readonly ResolvedBehaviour[];
}

/** Refuse an object this file cannot take (EINVAL, saying why). */
export function checkObject(
  { behaviour, hook, catalogue }: Target,
  object: string,
  facts: ObjectFacts,
  globals: Record<string, string>,
  mode: Mode,
): void {
  const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object, behaviour, hook } });
  if (facts.programs.length === 0) throw einval(`attach ${object}: the object has no program`);
  const companions = facts.programs.filter((p) => companionOf(p) !== null);
  if (companions.length === facts.programs.length) {
    throw einval(
      `attach ${object}: the object has only fentry/fexit programs (${companions.map((p) => p.name).join(', ')}); ` +
        `companions attach with an LSM program for ${hook} (SEC("lsm")), and this object has none`,
    );
  }
  for (const p of facts.programs) {
    if (companionOf(p) !== null) continue;
    if (!p.isLsm) {
      throw einval(
        `attach ${object}: program ${p.name} is a ${p.type} program (SEC("${p.section}")); ` +
          `a behaviour file takes LSM programs (SEC("lsm"), SEC("lsm.s") or SEC("lsm/${hook}")) and, next to them, ` +
          `fentry/fexit companions (SEC("fentry/FUNC"), SEC("fexit/FUNC"))`,
      );
    }
    if (p.hook !== null && p.hook !== hook) {
      const there = catalogue.find((b) => b.hook === p.hook);
      throw einval(
        `attach ${object}: program ${p.name} is for hook ${p.hook} (SEC("${p.section}")) but ${behaviour} ` +
          `attaches to ${hook}` +
          (there ? `: write it to ${there.behaviour} instead` : '; use SEC("lsm") to let the file choose the hook'),
      );
    }
  }
  const known = new Set(facts.globals.map((g) => g.name));
  for (const key of Object.keys(globals)) {
    if (!known.has(key)) {
      // only what a line may set
      const have = [...known].filter((g) => !KRSIFS_GLOBALS.includes(g)).join(', ') || 'none';
      throw einval(`attach ${object}: no global named ${key} in the object (it has: ${have})`);
    }
  }
  // attaching it enforcing instead would refuse for real what the writer only meant to watch
  if (mode === 'monitor' && !facts.globals.some((g) => g.name === MONITOR_GLOBAL && g.section.startsWith('.rodata'))) {
    throw einval(`attach ${object}: cannot honour mode=monitor: it does not include krsi_verdict.h (no ${MONITOR_GLOBAL} ` +
      `global); it would refuse for real`);
  }
}

/** What a loaded program's line may not ask for, checked before anything is read. */
export function checkLoadedLine({ behaviour, hook }: Target, source: string, id: number, globals: Record<string, string>, mode: Mode): void {
  const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object: source, behaviour, hook, progId: id } });
  const keys = Object.keys(globals);
  if (keys.length > 0) {
    throw einval(`attach ${source}: ${keys[0]}=…: a loaded program's globals were set by whoever loaded it; KEY=VALUE is for object files`);
  }
  if (mode === 'monitor') {
    // its krsi_monitor (if it has one) was fixed by whoever loaded it
    throw einval(`attach ${source}: cannot honour mode=monitor: a program another loader loaded refuses as it was ` +
      `loaded to; monitor mode is for object files that include krsi_verdict.h`);
  }
}

/**
 * Refuse a loaded program this file cannot take: it must be an LSM program
 * loaded for this very hook (the addon checks again on the fd it attaches).
 */
export function checkLoaded({ behaviour, hook, catalogue }: Target, source: string, id: number, facts: LoadedProgramFacts): void {
  const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object: source, behaviour, hook, progId: id } });
  const what = `attach ${source}: program ${id} (${facts.name || 'no name'})`;
  if (facts.type !== 'lsm') {
    throw einval(`${what} is a ${facts.type} program; a behaviour file takes only LSM programs`);
  }
  if (facts.hook !== hook) {
    const there = facts.hook ? catalogue.find((b) => b.hook === facts.hook) : undefined;
    throw einval(`${what} was loaded for hook ${facts.hook ?? '?'} but ${behaviour} attaches to ${hook}` +
      (there ? `: write it to ${there.behaviour} instead` : ' (a loaded program\'s hook was fixed when it was loaded)'));
  }
}

/**
 * The name a loaded program is listed and replaced by: its kernel name (15
 * characters), made a C identifier (bpffs refuses dots); prog_ID when it has
 * none. A program of the same name on the file is replaced, as for an object.
 */
export function loadedName(kernelName: string, id: number): string {
  const n = kernelName.replace(/\./g, '_');
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(n) ? n : `prog_${id}`;
}
