// Bring what is attached in line with a policy directory. A declaration
// already attached from the same object bytes with the same settings (the
// digest recorded next to its pins) is kept as it is: same link, nothing
// detached, no gap. Any other is run as the line it is, the usual way (a
// same-name program is replaced, new attached before old detached). With
// prune, programs no declaration names are detached, but never on a guess.
import { KrsiError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Krsi } from '../core/krsi.js';
import type { Credentials, KernelPort, PinnedLink } from '../core/kernel-port.js';
import { isCompanionHook } from '../core/companion.js';
import { digestOf, parseDigest, sameDigest, type Digest } from '../core/digest.js';
import type { Mode } from '../core/grammar.js';
import { lineOf, where, type Declaration, type PolicySet } from './parse.js';
import { checkTrusted } from './trust.js';

/** What reconciling needs from the kernel layer: reading objects and pins, and the digest records. */
export type PolicyKernel = Pick<KernelPort, 'readObject' | 'list' | 'digestOf'>;

/** A declaration's object, read the way the daemon reads it, before anything is attached. */
export interface Plan {
  digest: Digest;
  /** The object's programs: the pin names it takes. */
  programs: string[];
  mode: Mode;
}

/** Read, check and inspect a declaration's object (as `reader`, which is root for the daemon). */
export async function planOf(d: Declaration, kernel: PolicyKernel, reader: Credentials, trust = checkTrusted): Promise<Plan> {
  await trust(d.path, 'object');
  const source = await kernel.readObject(reader, d.path);
  try {
    if (!source.facts) throw new KrsiError('ENOEXEC', `${d.path} names a loaded program (${source.program?.source}); a policy line names an object file`);
    return { digest: await digestOf(source.data, d.globals, d.mode), programs: source.facts.programs.map((p) => p.name), mode: d.mode };
  } finally {
    source.close();
  }
}

export type State =
  /** every program of the object is attached from these bytes with these settings, on the behaviour's hook */
  | { inForce: true; links: PinnedLink[] }
  | { inForce: false; why: string; links: PinnedLink[] };

/** Is the declaration attached as declared? `pins`: the behaviour's pins now. */
export async function stateOf(plan: Plan, hook: string | undefined, pins: PinnedLink[], kernel: Pick<PolicyKernel, 'digestOf'>): Promise<State> {
  const links: PinnedLink[] = [];
  const whys: string[] = [];
  for (const name of plan.programs) {
    const pin = pins.find((p) => p.name === name);
    if (!pin) {
      whys.push(`${name} is not attached`);
      continue;
    }
    links.push(pin);
    const recorded = parseDigest((await kernel.digestOf(pin.linkId)) ?? '');
    // a companion runs on the function its section names: the digest covers that
    if (pin.hook !== hook && !isCompanionHook(pin.hook)) whys.push(`${name} runs on hook ${pin.hook ?? '?'}, not ${hook ?? '(none here)'}`);
    else if (!recorded) whys.push(`${name} (link ${pin.linkId}) has no digest record (attached by an older krsifs, or lost)`);
    else if (recorded.object !== plan.digest.object) whys.push(`${name} (link ${pin.linkId}) was attached from other object bytes`);
    else if (pin.mode !== plan.mode) whys.push(`${name} (link ${pin.linkId}) runs in mode=${pin.mode}, not mode=${plan.mode}`);
    else if (!sameDigest(recorded, plan.digest)) whys.push(`${name} (link ${pin.linkId}) was attached with other settings`);
  }
  return whys.length ? { inForce: false, why: whys.join('; '), links } : { inForce: true, links };
}

export type Outcome = 'kept' | 'attached' | 'replaced' | 'failed';

export interface DeclarationResult {
  conf: string;
  lineNo: number;
  text: string;
  behaviour: string;
  path: string;
  outcome: Outcome;
  programs: { name: string; linkId: number | null }[];
  error?: { code: string; message: string };
}

export interface ProblemResult {
  conf: string;
  lineNo: number;
  text: string;
  behaviour: string | null;
  error: { code: string; message: string };
}

export interface ReconcileResult {
  dir: string;
  files: string[];
  results: DeclarationResult[];
  problems: ProblemResult[];
  pruned: { behaviour: string; name: string; linkId: number }[];
  /** Behaviours --prune left alone, and why ('*' for all of them). */
  pruneSkipped: { behaviour: string; why: string }[];
  /** Failed declarations plus problems: 0 when the directory is in force. */
  failures: number;
}

export interface ReconcileDeps {
  core: Pick<Krsi, 'execute' | 'fail' | 'hook' | 'behaviours'>;
  kernel: PolicyKernel;
  /** Whose rights read the objects: the daemon's own. */
  credentials: Credentials;
  log: Logger;
  /** The check that no one but root can change an object (a double in unit tests, whose objects are not files). */
  trust?: typeof checkTrusted;
}

const brief = (e: KrsiError) => ({ code: e.code, message: e.message });

export async function reconcile(set: PolicySet, deps: ReconcileDeps, opts: { prune?: boolean } = {}): Promise<ReconcileResult> {
  const { core, kernel, log } = deps;
  const out: ReconcileResult = { dir: set.dir, files: set.files, results: [], problems: [], pruned: [], pruneSkipped: [], failures: 0 };
  // behaviours whose declared programs are not all known: prune leaves them alone
  const unknown = new Map<string, string>();

  for (const p of set.problems) {
    core.fail(p.behaviour ?? 'policies', p.text, p.error, 'policy line failed');
    out.problems.push({ conf: p.conf, lineNo: p.lineNo, text: p.text, behaviour: p.behaviour, error: brief(p.error) });
    out.failures++;
    unknown.set(p.behaviour ?? '*', `${where(p)} could not be read: what it declares is unknown`);
  }

  // which declaration claimed each program name of each behaviour
  const claims = new Map<string, Declaration>();
  for (const d of set.declarations) {
    const at = where(d);
    const result: DeclarationResult = { conf: d.conf, lineNo: d.lineNo, text: d.text, behaviour: d.behaviour, path: d.path, outcome: 'failed', programs: [] };
    out.results.push(result);
    const failed = (e: unknown) => {
      const err = KrsiError.from(e);
      result.error = brief(err);
      out.failures++;
    };
    let plan: Plan;
    try {
      plan = await planOf(d, kernel, deps.credentials, deps.trust);
    } catch (e) {
      const err = KrsiError.from(e);
      const located = new KrsiError(err.errno, `${at}: ${err.message}`, { details: { ...err.details, policy: at, object: d.path } });
      core.fail(d.behaviour, d.text, located, 'policy line failed');
      failed(located);
      unknown.set(d.behaviour, `${at} could not be read: the programs it declares are unknown`);
      continue;
    }
    result.programs = plan.programs.map((name) => ({ name, linkId: null }));
    const clash = plan.programs.map((n) => [n, claims.get(`${d.behaviour}/${n}`)] as const).find(([, c]) => c);
    if (clash) {
      const err = new KrsiError('EEXIST', `${at}: program ${clash[0]} on ${d.behaviour} is already declared by ${where(clash[1]!)}; ` +
        'a behaviour file holds one program of a name: this line is not applied', { details: { policy: at, object: d.path } });
      core.fail(d.behaviour, d.text, err, 'policy line failed');
      failed(err);
      continue;
    }
    for (const n of plan.programs) claims.set(`${d.behaviour}/${n}`, d);

    const before = await kernel.list(d.behaviour);
    const state = await stateOf(plan, core.hook(d.behaviour), before, kernel);
    if (state.inForce) {
      result.outcome = 'kept';
      result.programs = state.links.map((l) => ({ name: l.name, linkId: l.linkId }));
      log.info('policy kept', { policy: at, file: d.behaviour, programs: result.programs.map((p) => `${p.name}:${p.linkId}`).join(',') });
      continue;
    }
    try {
      await core.execute(d.behaviour, lineOf(d), deps.credentials, undefined, { where: at, line: d.text });
    } catch (e) {
      failed(e);
      continue;
    }
    const after = await kernel.list(d.behaviour);
    result.outcome = state.links.length ? 'replaced' : 'attached';
    result.programs = plan.programs.map((name) => ({ name, linkId: after.find((p) => p.name === name)?.linkId ?? null }));
    log.info(`policy ${result.outcome}`, { policy: at, file: d.behaviour, why: state.why, programs: result.programs.map((p) => `${p.name}:${p.linkId}`).join(',') });
  }

  if (opts.prune) await prune(out, claims, unknown, deps);
  return out;
}

async function prune(out: ReconcileResult, claims: Map<string, Declaration>, unknown: Map<string, string>, deps: ReconcileDeps): Promise<void> {
  const { core, kernel, log } = deps;
  if (unknown.has('*')) {
    out.pruneSkipped.push({ behaviour: '*', why: unknown.get('*')! });
    log.warn('prune skipped: nothing detached', { why: unknown.get('*') });
    return;
  }
  for (const behaviour of core.behaviours()) {
    const why = unknown.get(behaviour);
    if (why) {
      out.pruneSkipped.push({ behaviour, why });
      log.warn('prune skipped for this file', { file: behaviour, why });
      continue;
    }
    for (const p of await kernel.list(behaviour)) {
      if (claims.has(`${behaviour}/${p.name}`)) continue;
      try {
        await core.execute(behaviour, `!${p.name}`, deps.credentials, undefined, { where: '--prune', line: `!${p.name}` });
        out.pruned.push({ behaviour, name: p.name, linkId: p.linkId });
        log.info('pruned: not declared', { file: behaviour, program: p.name, link_id: p.linkId });
      } catch {
        out.failures++; // recorded by execute
      }
    }
  }
}
