// The events ring's kernel side (addon/bpf_events.cc), typed: the one
// BPF_MAP_TYPE_RINGBUF every policy writes to (bpf/krsi_events.h), pinned in
// bpffs, and a reader that drains it on the event loop without blocking it.
import path from 'node:path';
import { native } from '../addon.js';

// The names objects declare (bpf/krsi_events.h, bpf/krsi_verdict.h): libbpf
// makes each use the pinned map instead of one of its own.
export const RING_MAP = 'krsi_events';
export const LOST_MAP = 'krsi_lost';
export const STATS_MAP = 'krsi_stats';
export const REPORTED_MAP = 'krsi_reported';

export interface EventsOpenResult {
  /** True when this call created (and pinned) the ring; false when it was pinned already. */
  created: boolean;
}

/** Where the shared maps are pinned (bpf/krsi_events.h, bpf/krsi_verdict.h). */
export interface SharedMapPaths {
  ring: string;
  lost: string;
  /** krsi_stats: a behaviour's counters, by its id. */
  stats: string;
  /** krsi_reported: the observer's marks. */
  reported: string;
}

/** The shared maps' pins under the pin root. */
export function sharedMapPaths(pinRoot: string): SharedMapPaths {
  return {
    ring: path.join(pinRoot, 'events'),
    lost: path.join(pinRoot, 'events_lost'),
    stats: path.join(pinRoot, 'stats'),
    reported: path.join(pinRoot, 'reported'),
  };
}

/** map name -> pin, for loadAndAttach's reuseMaps. */
export function reuseMapsOf(p: SharedMapPaths): Record<string, string> {
  return { [RING_MAP]: p.ring, [LOST_MAP]: p.lost, [STATS_MAP]: p.stats, [REPORTED_MAP]: p.reported };
}

/**
 * Open the ring, the lost counter, the counters and the marks pinned at
 * `paths`, creating and pinning each that is absent. Synchronous (a few
 * syscalls). Errors: EEXIST a pin of another type or shape is there (the
 * message names it); the kernel's errno (EPERM without CAP_BPF,
 * ENOENT/ENOTSUP no bpffs, EINVAL size not a power-of-2 multiple of the page
 * size).
 */
export function eventsOpen(paths: SharedMapPaths, sizeBytes: number): EventsOpenResult {
  return native.eventsOpen(paths.ring, paths.lost, sizeBytes, paths.stats, paths.reported);
}

/**
 * Called on the loop with every record the ring held (raw bytes, in ring
 * order), how many records the full ring refused since the previous batch
 * (or since the reader started), and CLOCK_REALTIME minus CLOCK_BOOTTIME in
 * nanoseconds (to turn a record's boot-time stamp into wall time).
 */
export type OnBatch = (records: Buffer[], lost: number, realtimeMinusBoottimeNs: number) => void;

export interface EventReader {
  /** Stop watching the ring; twice is a no-op. */
  close(): void;
}

/**
 * Start draining the pinned ring, dropping what it holds now (records from
 * before the start are nobody's). While it runs the ring's data is mapped
 * twice into this process (libbpf): 2 × its size of RSS. Errors: the
 * kernel's errno opening the pins or mapping the ring.
 */
export function openEventReader(ringPath: string, lostPath: string, onBatch: OnBatch): EventReader {
  return new native.EventReader(ringPath, lostPath, onBatch) as EventReader;
}
