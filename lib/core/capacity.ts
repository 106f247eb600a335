// E2BIG from an attach: the hook is full. What the operator is told: how many
// programs the hook has, how many are krsifs's, and the kernel's limit,
// measured when the failed attach lets us.
import { KrsiError } from '../errors.js';
import { companionOf } from './companion.js';
import type { CoreContext } from './context.js';
import type { ObjectFacts } from './kernel-port.js';

/**
 * BPF_MAX_TRAMP_LINKS on x86-64 (27 on s390x): the programs one hook takes,
 * LSM links and fentry/fexit/fmod_ret on bpf_lsm_<hook> together. Only said
 * when the failing attach does not let us measure it.
 */
export const MAX_LINKS_PER_HOOK = 38;

/**
 * Count what is on the hook, and measure the kernel's limit: the attach
 * failed at the program with index i of the object (the ones before it were
 * attached, then detached again), so the hook took `on hook now + i` links.
 */
export async function capacity(ctx: CoreContext, err: KrsiError, hook: string, facts: ObjectFacts): Promise<KrsiError> {
  const { kernel } = ctx;
  // a companion's own function was full: the addon's message names it, the hook's count says nothing
  if (facts.programs.some((p) => p.name === err.details.program && companionOf(p) !== null)) return err;
  const onHook = await kernel.linksOnHook(hook).catch(() => null);
  let ours = 0;
  let observers = 0;
  for (const dir of await kernel.pinnedBehaviours().catch(() => [] as string[])) {
    const pins = await kernel.list(dir).catch(() => []);
    ours += pins.filter((p) => p.hook === hook).length;
    if (ctx.hookOf.get(dir) === hook && (await kernel.hasObserver(dir).catch(() => false))) observers++;
  }
  // companions run on their own functions: they take none of the hook's slots
  const onThisHook = facts.programs.filter((p) => companionOf(p) === null);
  const failed = typeof err.details.program === 'string' ? onThisHook.findIndex((p) => p.name === err.details.program) : -1;
  const limit = onHook !== null && failed >= 0 ? onHook + failed : MAX_LINKS_PER_HOOK;
  const n = onThisHook.length;
  const msg =
    `${err.message}: hook ${hook} already has ${onHook ?? '?'} programs attached (krsifs: ${ours + observers} of them` +
    (observers ? `, its denial observer included` : '') + ')' +
    (n > 1 ? ` and this object has ${n}` : '') +
    `; the kernel allows ${limit} per hook, shared with fentry/fexit on bpf_lsm_${hook}`;
  return new KrsiError(err.errno, msg, {
    verifierLog: err.verifierLog,
    details: { ...err.details, attachedOnHook: onHook, attachedByKrsifs: ours + observers, observers, limit, objectPrograms: n },
  });
}

/**
 * Would the object fit on the hook without the observer that just took a
 * slot? Known from capacity()'s measure; unknown (a loaded program, one
 * link): try.
 */
export function roomWithoutObserver(err: KrsiError): boolean {
  const { attachedOnHook: on, limit, objectPrograms: n } = err.details;
  if (typeof on !== 'number' || typeof limit !== 'number' || typeof n !== 'number') return true;
  return on - 1 + n <= limit;
}
