// The daemon's side of the policy directory: apply it at start-up, before
// the mount is announced, and again on every SIGHUP (one reconcile at a time:
// a SIGHUP during one asks for one more after it).
import { stat } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Krsi } from '../core/krsi.js';
import { credentialsOf } from '../kernel/proc.js';
import { DEFAULT_POLICY_DIR, readPolicyDir, type BehaviourNames } from './parse.js';
import { reconcile, type PolicyKernel } from './reconcile.js';
import { writeReport, type Report } from './report.js';

/**
 * --policies: undefined takes /etc/krsifs/policies.d when it exists (no
 * policies when it does not); '' turns policies off; a directory named
 * explicitly must exist (its absence is a failure, as a missing file is).
 */
export async function policyDir(given: string | undefined): Promise<string | null> {
  if (given === '') return null;
  if (given !== undefined) return path.resolve(given);
  return (await stat(DEFAULT_POLICY_DIR).then((s) => s.isDirectory(), () => false)) ? DEFAULT_POLICY_DIR : null;
}

export function behaviourNames(core: Pick<Krsi, 'hook' | 'catalogue'>): BehaviourNames {
  return {
    has: (b) => core.hook(b) !== undefined,
    why: (b) => core.catalogue.find((c) => c.behaviour === b)?.reason || 'not in the catalogue',
  };
}

export interface PolicyServiceOptions {
  dir: string;
  prune: boolean;
  strict: boolean;
  core: Krsi;
  kernel: PolicyKernel;
  pinRoot: string;
  mountpoint: string;
  log: Logger;
}

export class PolicyService {
  private generation = 0;
  private running: Promise<Report> | null = null;
  private pending: Promise<Report> | null = null;

  constructor(private readonly o: PolicyServiceOptions) {}

  /** Read the directory and reconcile; a call during a reconcile waits for it and runs once more after it. */
  apply(): Promise<Report> {
    if (!this.running) {
      this.running = this.once().finally(() => (this.running = null));
      return this.running;
    }
    this.pending ??= this.running.catch(() => undefined).then(() => {
      this.pending = null;
      return this.apply();
    });
    return this.pending;
  }

  private async once(): Promise<Report> {
    const { o } = this;
    const generation = ++this.generation;
    const set = await readPolicyDir(o.dir, behaviourNames(o.core));
    const result = await reconcile(set, { core: o.core, kernel: o.kernel, credentials: await credentialsOf(process.pid), log: o.log }, { prune: o.prune });
    const report: Report = {
      ...result, pid: process.pid, generation, at: new Date().toISOString(),
      pinRoot: o.pinRoot, mountpoint: o.mountpoint, strict: o.strict, prune: o.prune,
    };
    await writeReport(report).catch((e: unknown) => o.log.warn('cannot write the policy report for krsifs status', { error: (e as Error).message }));
    const count = (what: string) => result.results.filter((r) => r.outcome === what).length;
    (result.failures ? o.log.warn : o.log.info)('policies applied', {
      generation, dir: o.dir, files: result.files.length, declarations: result.results.length,
      kept: count('kept'), attached: count('attached'), replaced: count('replaced'), failed: count('failed'),
      problems: result.problems.length, pruned: result.pruned.length,
    });
    return report;
  }
}

/** --policies-strict: the first failure of a report, as the error the daemon exits with; null when none failed. */
export function strictFailure(r: Report): KrsiError | null {
  const first = r.problems[0]?.error ?? r.results.find((x) => x.outcome === 'failed')?.error;
  if (!first && !r.failures) return null;
  const code = first?.code ?? 'EIO';
  return new KrsiError(code in constants.errno ? code : 'EIO',
    `--policies-strict: ${r.failures} of the policy lines in ${r.dir} failed (the ones that applied stay attached; ` +
      `krsifs status says which failed); first: ${first?.message ?? 'a --prune detach failed'}`);
}

/** One line for STATUS= (systemctl status) and the like. */
export function summary(r: Report | null): string {
  if (!r) return 'serving; no policy directory';
  const n = (o: string) => r.results.filter((x) => x.outcome === o).length;
  const inForce = n('kept') + n('attached') + n('replaced');
  return r.failures
    ? `serving; policies: ${inForce} in force, ${r.failures} failed (krsifs status)`
    : `serving; policies: ${inForce} in force`;
}
