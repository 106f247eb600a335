// Start-up and the ephemeral stop: what earlier daemons left attached is
// taken over (or, with --ephemeral, removed).
import { KrsiError } from '../errors.js';
import type { CoreContext } from './context.js';
import { isCompanionHook } from './companion.js';
import type { Observers } from './observers.js';

/**
 * Take over what earlier daemons pinned. The attaches a crash interrupted
 * are settled first (the kernel layer rolls each forward or back: never half
 * an object). A program running on another hook than its behaviour's now,
 * or pinned for a behaviour that has no file, is reported (log and
 * error_log) and left attached. Returns how many programs were adopted.
 */
export async function adopt(ctx: CoreContext, observers: Observers): Promise<number> {
  const { kernel, log } = ctx;
  for (const r of await kernel.recover()) {
    const fields = { file: r.behaviour, pin: `${kernel.pinRoot}/${r.behaviour}/${r.pin.name}`, prog_id: r.pin.progId, link_id: r.pin.linkId };
    if (r.outcome === 'finished') {
      log.warn('finished an attach a crash interrupted after its commit (every program of the object was pinned)', {
        ...fields, replaced_link_id: r.replaced?.linkId ?? null,
      });
    } else if (r.outcome === 'removed') {
      log.warn('removed the temporary pin of an attach that never finished (its write failed)', fields);
    } else {
      log.error('cannot settle a temporary pin', { ...fields, error: r.error ?? null });
    }
  }
  let adopted = 0;
  for (const dir of await kernel.pinnedBehaviours()) {
    const hook = ctx.hookOf.get(dir);
    for (const p of await kernel.list(dir)) {
      adopted++;
      const where = `${kernel.pinRoot}/${dir}/${p.name}`;
      const fields = { program: p.name, hook: p.hook, prog_id: p.progId, link_id: p.linkId, object: p.object };
      log.info('adopted', { file: dir, ...fields });
      if (!hook) {
        const why = ctx.catalogue.find((b) => b.behaviour === dir)?.reason || 'it is not in the catalogue';
        ctx.warn(dir, new KrsiError('ESTALE',
          `${dir}: pinned program ${p.name} runs on hook ${p.hook ?? '?'} but ${dir} has no file here (${why}); ` +
            `it stays attached; remove it with: rm ${where}`), fields);
      } else if (p.hook !== hook && !isCompanionHook(p.hook)) {
        ctx.warn(dir, new KrsiError('ESTALE',
          `${dir}: pinned program ${p.name} runs on hook ${p.hook ?? '?'} but the catalogue now maps the behaviour to ` +
            `${hook}; it stays attached on ${p.hook ?? '?'}; detach it with '!${p.name}'`), fields);
      }
    }
  }
  await observers.adopt();
  return adopted;
}

/** --ephemeral's clean stop: detach every program krsifs pinned, and the observers. Returns how many programs. */
export async function detachEverything(ctx: CoreContext, observers: Observers): Promise<number> {
  const { kernel, log } = ctx;
  let n = 0;
  await kernel.recover(); // an attach in flight is settled, then detached like the rest
  for (const dir of await kernel.pinnedBehaviours()) {
    for (const p of await kernel.list(dir)) {
      try {
        const { released } = await kernel.detach(dir, p.name);
        n++;
        log.info('detached', { file: dir, program: p.name, prog_id: p.progId, link_id: p.linkId, released, why: 'ephemeral' });
      } catch (e) {
        log.error('detach failed', { file: dir, program: p.name, error: (e as Error).message });
      }
    }
  }
  for (const behaviour of await kernel.observedBehaviours()) await observers.settle(behaviour);
  return n;
}
