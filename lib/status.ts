// krsifs status: the declared policy (the policy directory) against what the
// kernel has attached now (the pins and their digest records), per behaviour,
// and the drift between them. Read-only: it attaches, detaches and mounts
// nothing. Why a declaration is not attached comes from reading its object
// here and, for a refusal only the kernel gives, from the daemon's report of
// its last reconcile. Exit status 0 when the declared policy is in force.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadCatalogue, resolveCatalogue, type ResolvedBehaviour } from './core/catalogue.js';
import type { PinnedLink } from './core/kernel-port.js';
import type { Mode } from './core/grammar.js';
import * as kernel from './kernel/index.js';
import { credentialsOf } from './kernel/proc.js';
import { BpffsKernelPort, DEFAULT_PIN_ROOT } from './kernel/port.js';
import { readPolicyDir, where, type BehaviourNames } from './policies/parse.js';
import { planOf, stateOf } from './policies/reconcile.js';
import { readReport, type Report } from './policies/report.js';
import { policyDir } from './policies/service.js';
import { KrsiError } from './errors.js';
import { escapeText } from './text.js';

export interface StatusOptions {
  policies?: string;
  pinRoot?: string;
  catalogue?: string;
}

export interface DeclaredStatus {
  policy: string;
  text: string;
  object: string;
  programs: { name: string; linkId: number | null }[];
  inForce: boolean;
  /** Why it is not in force (and the daemon's last failure for it, when there is one). */
  why?: string;
}

export interface BehaviourStatus {
  behaviour: string;
  hook: string | null;
  declared: DeclaredStatus[];
  /** Attached here, declared by no line. */
  undeclared: { name: string; linkId: number; progId: number; object: string | null; mode: Mode }[];
  /** Programs attached now and the denials counted since the behaviour's first attach (the `stats` file); null with none attached. */
  stats: { programs: number; denied: number; monitored: number } | null;
}

export interface Status {
  ok: boolean;
  policies: string | null;
  pinRoot: string;
  daemon: { pid: number; running: boolean; generation: number; appliedAt: string } | null;
  behaviours: BehaviourStatus[];
  problems: { policy: string; text: string; code: string; message: string }[];
}

/** A message without the FILE:N it starts with when the line is named next to it already. */
function bare(message: string, policy: string): string {
  return message.startsWith(`${policy}: `) ? message.slice(policy.length + 2) : message;
}

async function running(pid: number): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmd.split('\0').includes('mount');
}

/** The daemon's last failure for this very line, in words. */
function lastAttempt(report: Report | null, d: { conf: string; lineNo: number; text: string }): string {
  const r = report?.results.find((x) => x.conf === d.conf && x.lineNo === d.lineNo && x.text === d.text);
  if (!report) return 'no daemon has applied the policy directory since boot';
  if (!r) return `the daemon (generation ${report.generation}, ${report.at}) has not applied this line: reload it (systemctl reload krsifs, or kill -HUP ${report.pid})`;
  return r.error
    ? `the daemon's last attempt failed: ${r.error.code}: ${bare(r.error.message, `${d.conf}:${d.lineNo}`)}`
    : `the daemon ${r.outcome} it at ${report.at}, and it was detached or replaced since: reload to apply it again`;
}

export async function status(o: StatusOptions = {}): Promise<Status> {
  const pinRoot = path.resolve(o.pinRoot ?? DEFAULT_PIN_ROOT);
  const catalogue = resolveCatalogue(await loadCatalogue(o.catalogue), new Set(await kernel.kernelHooks()));
  const hookOf = new Map(catalogue.filter((b) => b.hook).map((b) => [b.behaviour, b.hook!]));
  const port = new BpffsKernelPort({ root: pinRoot, mounted: false, error: null });
  const report = await readReport(pinRoot);
  const dir = await policyDir(o.policies);
  const out: Status = {
    ok: true, policies: dir, pinRoot,
    daemon: report && { pid: report.pid, running: await running(report.pid), generation: report.generation, appliedAt: report.at },
    behaviours: [], problems: [],
  };
  const byName = new Map<string, BehaviourStatus>();
  const entry = (b: string) => {
    let e = byName.get(b);
    if (!e) byName.set(b, (e = { behaviour: b, hook: hookOf.get(b) ?? null, declared: [], undeclared: [], stats: null }));
    return e;
  };
  const pinsOf = new Map<string, PinnedLink[]>();
  const pins = async (b: string) => {
    if (!pinsOf.has(b)) pinsOf.set(b, await port.list(b).catch(() => []));
    return pinsOf.get(b)!;
  };

  const claims = new Map<string, string>();
  if (dir) {
    const set = await readPolicyDir(dir, names(catalogue, hookOf));
    for (const p of set.problems) out.problems.push({ policy: where(p), text: p.text, code: p.error.code, message: bare(p.error.message, where(p)) });
    const me = await credentialsOf(process.pid);
    for (const d of set.declarations) {
      const s: DeclaredStatus = { policy: where(d), text: d.text, object: d.path, programs: [], inForce: false };
      entry(d.behaviour).declared.push(s);
      let plan;
      try {
        plan = await planOf(d, port, me);
      } catch (e) {
        s.why = `${KrsiError.from(e).code}: ${bare(KrsiError.from(e).message, s.policy)}`;
        continue;
      }
      const clash = plan.programs.find((n) => claims.has(`${d.behaviour}/${n}`));
      if (clash) {
        s.why = `program ${clash} is already declared by ${claims.get(`${d.behaviour}/${clash}`)}: this line is never applied`;
        continue;
      }
      for (const n of plan.programs) claims.set(`${d.behaviour}/${n}`, s.policy);
      const state = await stateOf(plan, hookOf.get(d.behaviour), await pins(d.behaviour), port);
      s.programs = plan.programs.map((name) => ({ name, linkId: state.links.find((l) => l.name === name)?.linkId ?? null }));
      s.inForce = state.inForce;
      if (!state.inForce) s.why = `${state.why}; ${lastAttempt(report, d)}`;
    }
  }
  const pinned = await port.pinnedBehaviours().catch(() => [] as string[]);
  for (const b of [...new Set([...hookOf.keys(), ...pinned])]) {
    for (const p of await pins(b)) {
      if (/-(new|commit)$/.test(p.name) || claims.has(`${b}/${p.name}`)) continue;
      entry(b).undeclared.push({ name: p.name, linkId: p.linkId, progId: p.progId, object: p.object, mode: p.mode });
    }
  }
  for (const b of [...new Set([...hookOf.keys(), ...pinned])]) {
    const programs = (await pins(b)).length;
    if (programs === 0) continue;
    entry(b).stats = { programs, ...(await port.counts(b).catch(() => ({ denied: 0, monitored: 0 }))) };
  }
  const order = catalogue.map((c) => c.behaviour);
  out.behaviours = [...byName.values()].sort((a, b) => order.indexOf(a.behaviour) - order.indexOf(b.behaviour));
  out.ok = out.problems.length === 0 && out.behaviours.every((b) => b.declared.every((d) => d.inForce));
  return out;
}

function names(catalogue: readonly ResolvedBehaviour[], hookOf: Map<string, string>): BehaviourNames {
  return {
    has: (b) => hookOf.has(b),
    why: (b) => catalogue.find((c) => c.behaviour === b)?.reason || 'not in the catalogue',
  };
}

/** For people: one line per declaration and per undeclared program, the verdict last. */
export function formatStatus(s: Status): string {
  const out: string[] = [];
  const e = escapeText;
  const daemon = s.daemon
    ? `daemon pid ${s.daemon.pid} (${s.daemon.running ? 'running' : 'not running'}), last applied ${s.daemon.appliedAt} (generation ${s.daemon.generation})`
    : 'no daemon has applied policies since boot';
  out.push(`policies: ${s.policies ? e(s.policies) : 'none (no policy directory)'}; pins: ${e(s.pinRoot)}; ${daemon}`);
  for (const b of s.behaviours) {
    const st = b.stats;
    out.push(`${b.behaviour} (${b.hook ?? 'no hook here'})` +
      (st ? `: programs=${st.programs} denied=${st.denied} monitored=${st.monitored}` : ''));
    for (const d of b.declared) {
      const progs = d.programs.map((p) => `${p.name}${p.linkId !== null ? ` link_id=${p.linkId}` : ''}`).join(', ');
      out.push(`  declared  ${e(d.policy)}  ${e(d.text)}`);
      out.push(d.inForce ? `            in force: ${progs}` : `            NOT IN FORCE: ${e(d.why ?? '')}`);
    }
    for (const u of b.undeclared) {
      out.push(`  attached  ${u.name} link_id=${u.linkId} prog_id=${u.progId} object=${u.object === null ? '?' : e(u.object)} mode=${u.mode}: not declared`);
    }
  }
  for (const p of s.problems) out.push(`problem   ${e(p.policy)}: ${p.text ? `${JSON.stringify(e(p.text))}: ` : ''}${p.code}: ${e(p.message)}`);
  const bad = s.behaviours.flatMap((b) => b.declared).filter((d) => !d.inForce).length + s.problems.length;
  const extra = s.behaviours.reduce((n, b) => n + b.undeclared.length, 0);
  out.push(
    (s.ok ? 'status: the declared policy is in force' : `status: the declared policy is NOT in force (${bad} line${bad === 1 ? '' : 's'} not in force)`) +
      (extra ? `; ${extra} attached program${extra === 1 ? '' : 's'} not declared` : ''),
  );
  return out.join('\n') + '\n';
}
