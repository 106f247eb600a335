// The daemon's side of `events`: the one ring buffer of krsifs, pinned at
// <pin root>/events (its lost counter at <pin root>/events_lost), and the
// counters and marks of bpf/krsi_verdict.h (<pin root>/stats, /reported), so
// that they outlive the daemon like the pinned links; a reader draining the
// ring on the loop into the EventHub while anyone reads `events` (naming the program and errno of the
// observer's records); and the load options (Krsi's loadOptions) that make
// every object declaring `krsi_events` use those maps and tell it the
// behaviour it was written to. lib/core/krsi.ts knows none of this.
import { KrsiError } from './errors.js';
import type { Logger } from './log.js';
import type { ResolvedBehaviour } from './core/catalogue.js';
import { EventHub, decodeRecord, formatRecord, type EventRecord } from './core/events.js';
import { behaviourId } from './core/behaviour-id.js';
import { BEHAVIOUR_GLOBAL, BEHAVIOUR_ID_GLOBAL, HOOK_GLOBAL } from './core/globals.js';
import type { KernelPort, ObjectFacts } from './core/kernel-port.js';
import type { LoadOptions } from './core/krsi.js';
import { completeObserved } from './core/observer.js';
import {
  RING_MAP,
  eventsOpen,
  openEventReader,
  reuseMapsOf,
  sharedMapPaths,
  type EventReader,
  type SharedMapPaths,
} from './kernel/events.js';

/** 4 MiB: about 6,700 records of 616 bytes in flight. A power of 2, as the kernel requires. */
export const RING_BYTES = 4 << 20;

export interface EventsService {
  hub: EventHub;
  /** Where the ring is pinned; null when there is none (then objects keep their own ring and nobody reads it). */
  ringPath: string | null;
  /**
   * What an object's load gets so that it writes to the shared ring and maps
   * and knows its behaviour (Krsi's loadOptions): nothing for an object that
   * does not include krsi_events.h, or when there is no ring.
   */
  loadOptions(behaviour: string, hook: string, facts: ObjectFacts): LoadOptions;
  close(): void;
}

export function startEvents(
  pinRoot: string | null,
  catalogue: readonly ResolvedBehaviour[],
  log: Logger,
  /** The behaviours' pins: an observer's record names the denier when a behaviour has one program. */
  port: Pick<KernelPort, 'list'>,
  opts: { ringBytes?: number; queueLines?: number } = {},
): EventsService {
  // The ring is read only while someone reads `events` (records nobody reads
  // are gone anyway): libbpf maps its data twice, 8 MiB of the idle daemon's RSS.
  const hub = new EventHub({ queueLines: opts.queueLines, onReaders: (some) => (some ? startReading() : stopReading()) });
  const behaviours = new Set(catalogue.filter((b) => b.hook).map((b) => b.behaviour));
  const programsOf = async (behaviour: string) => (await port.list(behaviour)).map((p) => p.name);
  let reader: EventReader | null = null;
  let paths: SharedMapPaths | null = null;
  let ringPath: string | null = null;
  let reuseMaps: Record<string, string> | null = null;
  // Batches with observer records wait for a pins read: the ones after them
  // wait their turn, so lines keep the ring's order.
  let order: Promise<void> = Promise.resolve();

  const publish = async (records: EventRecord[]) => {
    const named = new Map<string, string[]>();
    for (const r of records) {
      if (!r.observed) {
        hub.publish(formatRecord(r));
        continue;
      }
      let programs = named.get(r.behaviour);
      if (!programs) {
        // the record's text is any program's to write: only a behaviour's own name reaches the pins
        programs = behaviours.has(r.behaviour) ? await programsOf(r.behaviour).catch(() => []) : [];
        named.set(r.behaviour, programs);
      }
      hub.publish(formatRecord(completeObserved(r, programs)));
    }
  };

  function startReading(): void {
    if (!paths || reader) return;
    try {
      // the reader drops what the ring holds: it came while nobody read
      reader = openEventReader(paths.ring, paths.lost, (raw, lost, offset) => {
        const records = raw.map((b) => decodeRecord(b, offset)).filter((r): r is EventRecord => r !== null);
        order = order
          .then(async () => {
            hub.kernelLost(lost);
            await publish(records);
          })
          // a failed batch must not stop the ones after it
          .catch((e: unknown) => log.error('events: a batch was not published', { error: (e as Error).message }));
      });
    } catch (e) {
      const err = KrsiError.from(e);
      log.error('events: cannot read the ring: this reader gets no records', { error: err.message, code: err.code });
    }
  }

  function stopReading(): void {
    reader?.close();
    reader = null;
  }

  if (pinRoot) {
    try {
      const p = sharedMapPaths(pinRoot);
      const { created } = eventsOpen(p, opts.ringBytes ?? RING_BYTES);
      paths = p;
      ringPath = p.ring;
      reuseMaps = reuseMapsOf(p);
      log.info('events ring', { pin: p.ring, bytes: opts.ringBytes ?? RING_BYTES, created, stats: p.stats });
    } catch (e) {
      const err = KrsiError.from(e);
      log.error('events: no shared ring: the events file stays empty and denials are not counted', { error: err.message, code: err.code });
      ringPath = null;
      reuseMaps = null;
    }
  } else {
    log.warn('events: no pin root: the events file stays empty', {});
  }

  return {
    hub,
    ringPath,
    loadOptions(behaviour, hook, facts) {
      if (!reuseMaps || !facts.maps.some((m) => m.name === RING_MAP)) return { globals: {} };
      const declares = (name: string) => facts.globals.some((g) => g.name === name && g.section.startsWith('.rodata'));
      const globals: Record<string, string> = {};
      if (declares(BEHAVIOUR_GLOBAL)) globals[BEHAVIOUR_GLOBAL] = behaviour;
      if (declares(HOOK_GLOBAL)) globals[HOOK_GLOBAL] = hook;
      if (declares(BEHAVIOUR_ID_GLOBAL)) globals[BEHAVIOUR_ID_GLOBAL] = behaviourId(behaviour).toString();
      return { globals, reuseMaps };
    },
    close() {
      hub.closeAll();
      stopReading();
    },
  };
}
