// What an attached program was made from: a digest of the object's bytes and
// one of the settings (the KEY=VALUE globals and the mode) it was loaded with. Recorded
// next to the pin at attach, so a declared policy that is already attached
// from the same bytes with the same settings is recognised and kept as it is
// (same link, no detach) by a later daemon.
import { createHash } from 'node:crypto';
import type { Mode } from './grammar.js';

export interface Digest {
  /** sha256 of the object file's bytes, hex. */
  object: string;
  /** sha256 of the settings, canonical (keys sorted), hex. */
  settings: string;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// An object's bytes are hashed on the daemon's event loop, which serves every
// FUSE request: one slice per turn, so that a big object (600 KB took 12 ms
// under TCG in one go) does not hold the other requests up.
const SLICE = 64 * 1024;

async function sha256Sliced(data: Buffer): Promise<string> {
  const h = createHash('sha256');
  for (let at = 0; at < data.length; at += SLICE) {
    if (at > 0) await new Promise<void>((r) => setImmediate(r));
    h.update(data.subarray(at, at + SLICE));
  }
  return h.digest('hex');
}

export async function digestOf(data: Buffer, globals: Readonly<Record<string, string>>, mode: Mode = 'enforce'): Promise<Digest> {
  const settings: [string, string | undefined][] = Object.keys(globals).sort().map((k) => [k, globals[k]]);
  // '' is no global's name: no clash. Enforce adds nothing, so the records
  // of links attached before modes existed still match their declarations.
  if (mode !== 'enforce') settings.unshift(['', `mode=${mode}`]);
  const canonical = JSON.stringify(settings);
  return { object: await sha256Sliced(data), settings: sha256(canonical) };
}

/** The record's text (a bpffs symlink's target: any bytes but NUL). */
export function formatDigest(d: Digest): string {
  return `object=sha256:${d.object} settings=sha256:${d.settings}`;
}

/** null for a record this version cannot read (then the program counts as changed). */
export function parseDigest(text: string): Digest | null {
  const m = /^object=sha256:([0-9a-f]{64}) settings=sha256:([0-9a-f]{64})$/.exec(text);
  return m ? { object: m[1]!, settings: m[2]! } : null;
}

export function sameDigest(a: Digest | null, b: Digest | null): boolean {
  return !!a && !!b && a.object === b.object && a.settings === b.settings;
}
