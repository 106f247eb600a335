// The daemon's side of `events`: the one ring buffer of krsifs, pinned at
// <pin root>/events (its lost counter at <pin root>/events_lost) so that it
// outlives the daemon like the pinned links, a reader draining it on the
// loop into the EventHub, and a KernelPort wrapper that makes every object
// declaring `krsi_events` (bpf/krsi_events.h) write to that ring and tells it
// the behaviour it was written to. lib/core/krsi.ts knows none of this.
import path from 'node:path';
import { KrsiError } from './errors.js';
import type { Logger } from './log.js';
import type { ResolvedBehaviour } from './core/catalogue.js';
import { EventHub, decodeRecord, formatRecord } from './core/events.js';
import { behaviourId } from './core/behaviour-id.js';
import { BEHAVIOUR_GLOBAL, BEHAVIOUR_ID_GLOBAL, HOOK_GLOBAL } from './core/globals.js';
import type { KernelPort } from './core/kernel-port.js';
import * as kernel from './kernel/index.js';
import { eventsOpen, openEventReader, type EventReader } from './kernel/events.js';

/** 4 MiB: about 6,700 records of 616 bytes in flight. A power of 2, as the kernel requires. */
export const RING_BYTES = 4 << 20;
export const RING_MAP = 'krsi_events';
export const LOST_MAP = 'krsi_lost';

export interface EventsService {
  hub: EventHub;
  /** Where the ring is pinned; null when there is none (then objects keep their own ring and nobody reads it). */
  ringPath: string | null;
  /** The port, with loadAndAttach pointing objects at the ring. */
  wrap<P extends KernelPort>(port: P): P;
  close(): void;
}

export function startEvents(
  pinRoot: string | null,
  catalogue: readonly ResolvedBehaviour[],
  log: Logger,
  opts: { ringBytes?: number; queueLines?: number } = {},
): EventsService {
  const hub = new EventHub({ queueLines: opts.queueLines });
  const behaviourOf = new Map<string, string>();
  for (const b of catalogue) if (b.hook) behaviourOf.set(b.hook, b.behaviour);
  let reader: EventReader | null = null;
  let ringPath: string | null = null;
  let lostPath: string | null = null;

  if (pinRoot) {
    try {
      ringPath = path.join(pinRoot, 'events');
      lostPath = path.join(pinRoot, 'events_lost');
      const { created } = eventsOpen(ringPath, lostPath, opts.ringBytes ?? RING_BYTES);
      // a ring we created starts at 0; an adopted one's count so far is not ours to report
      let lastLost: number | null = created ? 0 : null;
      reader = openEventReader(ringPath, lostPath, (records, lostTotal, offset) => {
        // The counter outlives daemons: count only what went missing while we read.
        if (lastLost !== null && lostTotal > lastLost) hub.kernelLost(lostTotal - lastLost);
        lastLost = lostTotal;
        for (const raw of records) {
          const r = decodeRecord(raw, offset);
          if (r) hub.publish(formatRecord(r));
        }
      });
      log.info('events ring', { pin: ringPath, bytes: opts.ringBytes ?? RING_BYTES, created });
    } catch (e) {
      const err = KrsiError.from(e);
      log.error('events: no shared ring: the events file stays empty', { error: err.message, code: err.code });
      ringPath = lostPath = null;
    }
  } else {
    log.warn('events: no pin root: the events file stays empty', {});
  }

  return {
    hub,
    ringPath,
    wrap<P extends KernelPort>(port: P): P {
      if (!ringPath || !lostPath) return port;
      const reuseMaps = { [RING_MAP]: ringPath, [LOST_MAP]: lostPath };
      const loadAndAttach: KernelPort['loadAndAttach'] = async (data, hook, o) => {
        const info = await kernel.inspect(data, o.objectName);
        if (!info.maps.some((m) => m.name === RING_MAP)) return port.loadAndAttach(data, hook, o);
        const globals = { ...o.globals };
        const declares = (name: string) => info.globals.some((g) => g.name === name && g.section.startsWith('.rodata'));
        const behaviour = behaviourOf.get(hook) ?? hook;
        if (declares(BEHAVIOUR_GLOBAL)) globals[BEHAVIOUR_GLOBAL] = behaviour;
        if (declares(HOOK_GLOBAL)) globals[HOOK_GLOBAL] = hook;
        if (declares(BEHAVIOUR_ID_GLOBAL)) globals[BEHAVIOUR_ID_GLOBAL] = behaviourId(behaviour).toString();
        const withRing = { ...o, globals, reuseMaps };
        return port.loadAndAttach(data, hook, withRing);
      };
      return new Proxy(port, {
        get(target, prop) {
          if (prop === 'loadAndAttach') return loadAndAttach;
          const v = Reflect.get(target, prop, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
    close() {
      reader?.close();
      reader = null;
      hub.closeAll();
    },
  };
}
