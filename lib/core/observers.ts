// The denial observer's place in the core: one per behaviour with programs,
// attached before its first program (so that its first denial is seen),
// gone with its last; and when it took the hook's last slot that a policy
// needs, it steps aside: enforcement comes first.
import { KrsiError, errnoOf } from '../errors.js';
import type { CoreContext } from './context.js';

const errnoE2BIG = errnoOf('E2BIG');

export class Observers {
  /**
   * Behaviours a listing found empty, their settle queued or done: the next
   * reads of an empty file cost nothing more. An attach takes the behaviour
   * out, so pins removed behind our back later are noticed again.
   */
  private readonly settledEmpty = new Set<string>();

  constructor(private readonly ctx: CoreContext) {}

  /**
   * Attach the behaviour's observer unless it has one. `fresh`: attached now;
   * `failed`: why it could not be, for the caller to report once the program
   * is in (a line that fails anyway needs no such word).
   */
  private async ensure(behaviour: string, hook: string): Promise<{ fresh: boolean; failed?: KrsiError }> {
    const { kernel, log } = this.ctx;
    try {
      if (await kernel.hasObserver(behaviour)) return { fresh: false };
      const { linkId } = await kernel.attachObserver(behaviour, hook);
      log.info('observer attached', { file: behaviour, hook, link_id: linkId });
      return { fresh: true };
    } catch (e) {
      const err = KrsiError.from(e);
      if (err.details.returnsVoid === true) {
        // its "verdict" is garbage: there are no denials to see
        log.info('no observer: the hook returns void', { file: behaviour, hook });
        return { fresh: false };
      }
      return { fresh: false, failed: err };
    }
  }

  private notObserved(behaviour: string, hook: string, errno: number, why: string): void {
    this.ctx.warn(behaviour, new KrsiError(errno,
      `${behaviour}: denials on ${hook} are not reported or counted (krsifs's observer is not attached): ${why}; ` +
        `the programs still enforce`, { details: { behaviour, hook } }));
  }

  /**
   * Run an attach with the behaviour's observer in place (checks done, so a
   * refused line costs no observer). When the observer just took the hook's
   * last slot and the programs then find it full, it yields if they would
   * fit without it (`fits`, given the E2BIG): the programs are attached,
   * unobserved, and that is said.
   */
  async around<T>(behaviour: string, hook: string, attach: () => Promise<T>, fits: (e: KrsiError) => Promise<boolean>): Promise<T> {
    this.settledEmpty.delete(behaviour);
    const { fresh, failed } = await this.ensure(behaviour, hook);
    let r: T;
    try {
      r = await attach();
    } catch (e) {
      const err = KrsiError.from(e);
      if (!fresh || err.code !== 'E2BIG' || !(await fits(err))) throw e;
      await this.ctx.kernel.detachObserver(behaviour).catch(() => false);
      this.ctx.log.info('observer detached: the hook has no room for it and the program', { file: behaviour, hook });
      r = await attach();
      this.notObserved(behaviour, hook, errnoE2BIG,
        'the hook had room for one more program and the policy came first (the observer takes a slot of its own)');
      return r;
    }
    if (failed) this.notObserved(behaviour, hook, failed.errno, failed.message);
    return r;
  }

  /**
   * What a listing found. Empty (its pins removed behind our back): the
   * observer goes too, once, through `queue` (the behaviour's own, so that an
   * attach in flight keeps its observer). With programs: armed again.
   */
  listed(behaviour: string, empty: boolean, queue: (task: () => Promise<void>) => Promise<void>): void {
    if (!empty) {
      this.settledEmpty.delete(behaviour);
      return;
    }
    if (this.settledEmpty.has(behaviour)) return;
    this.settledEmpty.add(behaviour);
    void queue(async () => {
      // an attach queued first, or a failure: the next empty listing tries again
      if (!(await this.settle(behaviour))) this.settledEmpty.delete(behaviour);
    }).catch(() => {});
  }

  /** The behaviour has no program left: its observer and its counters go. Resolves whether they went (the behaviour is empty). */
  async settle(behaviour: string): Promise<boolean> {
    const { kernel, log } = this.ctx;
    try {
      if ((await kernel.list(behaviour)).length > 0) return false;
      if (await kernel.detachObserver(behaviour)) log.info('observer detached', { file: behaviour });
      return true;
    } catch (e) {
      log.error('cannot remove the observer', { file: behaviour, error: (e as Error).message });
      return false;
    }
  }

  /** Start-up: a behaviour with programs and no observer gets one; an observer without programs goes. */
  async adopt(): Promise<void> {
    const { kernel, log, hookOf } = this.ctx;
    for (const [behaviour, hook] of hookOf) {
      if ((await kernel.list(behaviour)).length === 0) continue;
      const had = await kernel.hasObserver(behaviour).catch(() => false);
      if (had) log.info('adopted observer', { file: behaviour, hook });
      else {
        const { failed } = await this.ensure(behaviour, hook);
        if (failed) this.notObserved(behaviour, hook, failed.errno, failed.message);
      }
    }
    for (const behaviour of await kernel.observedBehaviours()) {
      if (hookOf.has(behaviour) && (await kernel.list(behaviour)).length > 0) continue;
      await this.settle(behaviour);
    }
  }
}
