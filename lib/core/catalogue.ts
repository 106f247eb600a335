// The catalogue: security behaviours and the LSM hooks that implement them.
// A behaviour names what an operator cares about; the first candidate hook the
// running kernel offers is the one its file attaches to (the RFC's indirection).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { KrsiError } from '../errors.js';

export type Catalogue = ReadonlyMap<string, readonly string[]>;

export interface ResolvedBehaviour {
  behaviour: string;
  candidates: readonly string[];
  /** The hook this kernel offers, or null when none of the candidates exists. */
  hook: string | null;
  /** Why there is no hook, in words; empty when there is one. */
  reason: string;
}

export const defaultCataloguePath = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../lib/catalogue.json',
);

/**
 * Names the mount uses for itself, and the shared maps pinned next to the
 * behaviours' pin directories (lib/kernel/events.ts): a behaviour may not
 * take them.
 */
const reserved = new Set(['hooks', 'error_log', 'events', 'stats', 'events_lost', 'reported']);
const behaviourName = /^[a-z][a-z0-9_]{0,62}$/;
const hookName = /^[a-z][a-z0-9_]{0,127}$/;

/**
 * Validate a parsed catalogue. Throws EINVAL naming the first problem and the
 * file, so an operator can fix it from the message alone.
 */
export function parseCatalogue(json: unknown, source = 'catalogue'): Catalogue {
  const bad = (what: string) =>
    new KrsiError('EINVAL', `catalogue ${source}: ${what}`, { details: { source } });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw bad('expected a JSON object mapping behaviour names to arrays of LSM hook names');
  }
  const out = new Map<string, string[]>();
  for (const [name, hooks] of Object.entries(json)) {
    if (!behaviourName.test(name)) {
      throw bad(`behaviour "${name}": names are lowercase letters, digits and _, starting with a letter`);
    }
    if (reserved.has(name)) throw bad(`behaviour "${name}": the name is reserved for the mount's own file`);
    if (!Array.isArray(hooks) || hooks.length === 0) {
      throw bad(`behaviour "${name}": expected a non-empty array of hook names`);
    }
    for (const h of hooks) {
      if (typeof h !== 'string' || !hookName.test(h)) {
        throw bad(`behaviour "${name}": "${String(h)}" is not a hook name (such as "bprm_check_security")`);
      }
    }
    out.set(name, [...hooks]);
  }
  if (out.size === 0) throw bad('no behaviours');
  return out;
}

export async function loadCatalogue(file = defaultCataloguePath): Promise<Catalogue> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw KrsiError.from(e, `catalogue ${file}: read`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KrsiError('EINVAL', `catalogue ${file}: not valid JSON: ${(e as Error).message}`);
  }
  return parseCatalogue(json, file);
}

/** Resolve every behaviour against the hooks this kernel offers. */
export function resolveCatalogue(cat: Catalogue, kernelHooks: ReadonlySet<string>): ResolvedBehaviour[] {
  return [...cat].map(([behaviour, candidates]) => {
    const hook = candidates.find((h) => kernelHooks.has(h)) ?? null;
    const reason = hook
      ? ''
      : `none of ${candidates.join(', ')} is an LSM hook of this kernel (no bpf_lsm_<hook> in its BTF)`;
    return { behaviour, candidates, hook, reason };
  });
}
