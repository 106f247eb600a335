// How an attach becomes permanent: all of an object or none of it, across a
// SIGKILL of the daemon too, and never a moment with the hook unguarded.
//
// A behaviour's pin directory holds one link pin per program, named by its
// full name. An attach pins its new links as NAME-new (the addon does, as it
// attaches them) and records them (link-records.ts); once every one is
// pinned, each is renamed NAME-commit: the commit point. Then each is renamed
// over NAME: bpffs's rename is simple_rename, so a program of the same name
// loses its pin in the same step. A crash before the commit leaves NAME-new
// pins, which the next daemon removes (nothing of the object stays, what was
// attached stays); after it, the next daemon finishes the renames (all of it
// goes in). bpffs refuses dots in names, and program names never hold a '-',
// so a temporary name cannot clash with a program's.
import { KrsiError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PinnedLink, Recovered, Unpinned } from '../core/kernel-port.js';
import type { LinkRecord } from './link-records.js';

/** A behaviour's pin directory, as the protocol needs it (lib/kernel/port.ts: bpffs). */
export interface PinDirectory {
  readonly path: string;
  /** Its pins as the kernel has them now, temporary ones included, by link id. */
  pins(): Promise<PinnedLink[]>;
  /** rename(2) `from` over `to`: a link pinned at `to` loses its pin in the same step. */
  rename(from: string, to: string): Promise<void>;
  /** Remove pin `name`. Errors: ENOENT no such pin. */
  unpin(name: string): Promise<void>;
  /** Once the kernel has let go of a link whose pin went: true; false when another holder keeps it. */
  released(pin: PinnedLink): Promise<boolean>;
}

export interface Records {
  write(linkId: number, r: LinkRecord): Promise<void>;
  forget(linkId: number): Promise<void>;
}

export const temporaryPin = (name: string): string => `${name}-new`;
const committedPin = (name: string): string => `${name}-commit`;
const programOfPin = (pin: string): string => pin.replace(/-(new|commit)$/, '');

/** A pin of an attach in flight: never listed, settled at start-up. */
export function isTemporaryPin(name: string): boolean {
  return name.endsWith('-new') || name.endsWith('-commit');
}

/** A name krsifs gives a pin; anything else in a pin directory was put there by someone else. */
export function isPinName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*(-new|-commit)?$/.test(name);
}

/** A new link, already pinned as temporaryPin(name). */
export interface NewLink {
  name: string;
  progId: number;
  linkId: number;
}

/**
 * Commit links pinned as NAME-new: record them, rename them to NAME-commit,
 * then over NAME. `before`: the directory's pins from before the attach
 * (read while it loaded), whose final names these take. Resolves, with what
 * they replaced, once the kernel has let the replaced links go. On failure before the commit, every new link goes
 * and nothing changed; after it (only a broken bpffs fails a rename in one
 * directory), the ones renamed stay.
 */
export async function commit(
  dir: PinDirectory,
  records: Records,
  links: NewLink[],
  record: LinkRecord,
  before: readonly PinnedLink[],
  log: Logger,
): Promise<Unpinned[]> {
  const held = new Map(before.map((p) => [p.name, p]));
  const pinnedAs = new Map<NewLink, string>(links.map((l) => [l, temporaryPin(l.name)]));
  const fail = async (e: unknown, what: string) => {
    for (const l of links) {
      const pin = pinnedAs.get(l)!;
      if (pin === l.name) continue;
      await dir.unpin(pin).catch((err: Error) =>
        log.error('detach of a new program failed', { pin: `${dir.path}/${pin}`, link_id: l.linkId, error: err.message }));
      await records.forget(l.linkId).catch(() => {});
    }
    const err = KrsiError.from(e);
    return new KrsiError(err.errno, `pin ${dir.path}: ${err.message}${what}`, { details: { ...err.details } });
  };
  try {
    for (const l of links) await records.write(l.linkId, record);
    for (const l of links) {
      await dir.rename(temporaryPin(l.name), committedPin(l.name));
      pinnedAs.set(l, committedPin(l.name));
    }
  } catch (e) {
    throw await fail(e, '; nothing from the object stays attached');
  }
  const old: PinnedLink[] = [];
  for (const l of links) {
    try {
      await dir.rename(committedPin(l.name), l.name);
    } catch (e) {
      throw await fail(e, '');
    }
    pinnedAs.set(l, l.name);
    const was = held.get(l.name);
    if (was) {
      await records.forget(was.linkId);
      old.push(was);
    }
  }
  return Promise.all(old.map(async (pin) => ({ pin, released: await dir.released(pin) })));
}

/** Detach pin `name`: resolves once the kernel has let its link go. Errors: ENOENT no such pin. */
export async function detach(dir: PinDirectory, records: Records, name: string): Promise<Unpinned> {
  const pin = (await dir.pins()).find((p) => p.name === name);
  if (!pin) throw new KrsiError('ENOENT', `unpin ${dir.path}/${name}: no such pin`);
  await dir.unpin(name);
  await records.forget(pin.linkId);
  return { pin, released: await dir.released(pin) };
}

/** Start-up: roll an interrupted attach forward when it had committed (a NAME-commit pin exists), back otherwise. */
export async function settle(dir: PinDirectory, records: Records, behaviour: string): Promise<Recovered[]> {
  const pins = await dir.pins();
  const temp = pins.filter((p) => isTemporaryPin(p.name));
  const committed = temp.some((p) => p.name === committedPin(programOfPin(p.name)));
  const out: Recovered[] = [];
  for (const pin of temp) {
    try {
      if (committed) {
        const old = pins.find((p) => p.name === programOfPin(pin.name));
        await dir.rename(pin.name, programOfPin(pin.name));
        if (old) await records.forget(old.linkId);
        out.push({ behaviour, pin, outcome: 'finished', replaced: old });
      } else {
        await dir.unpin(pin.name);
        await records.forget(pin.linkId);
        out.push({ behaviour, pin, outcome: 'removed' });
      }
    } catch (e) {
      out.push({ behaviour, pin, outcome: 'failed', error: (e as Error).message });
    }
  }
  return out;
}
