// krsifs hooks: every LSM hook the running kernel offers (from its BTF), and
// which behaviour of the catalogue maps to it.
import { loadCatalogue, resolveCatalogue } from './core/catalogue.js';
import * as kernel from './kernel/index.js';

export async function hooksReport(opts: { json: boolean; catalogue?: string | undefined }): Promise<string> {
  const hooks = await kernel.kernelHooks();
  const resolved = resolveCatalogue(await loadCatalogue(opts.catalogue), new Set(hooks));
  const behaviourOf = new Map<string, string[]>();
  for (const b of resolved) if (b.hook) behaviourOf.set(b.hook, [...(behaviourOf.get(b.hook) ?? []), b.behaviour]);
  if (opts.json) {
    return (
      JSON.stringify(
        {
          hooks: hooks.map((h) => ({ hook: h, behaviours: behaviourOf.get(h) ?? [] })),
          behaviours: resolved,
        },
        null,
        2,
      ) + '\n'
    );
  }
  const lines = hooks.map((h) => `${h}\t${(behaviourOf.get(h) ?? ['-']).join(',')}`);
  for (const b of resolved) if (!b.hook) lines.push(`# ${b.behaviour}: no file: ${b.reason}`);
  return lines.join('\n') + '\n';
}
