// The events ring's kernel side (addon/bpf_events.cc), typed: the one
// BPF_MAP_TYPE_RINGBUF every policy writes to (bpf/krsi_events.h), pinned in
// bpffs, and a reader that drains it on the event loop without blocking it.
import { native } from '../addon.js';

export interface EventsOpenResult {
  /** True when this call created (and pinned) the ring; false when it was pinned already. */
  created: boolean;
}

/**
 * Open the ring pinned at ringPath and the lost counter pinned at lostPath,
 * creating and pinning them when absent. Synchronous (a few syscalls).
 * Errors: EEXIST a pin of another kind is there; the kernel's errno (EPERM
 * without CAP_BPF, ENOENT/ENOTSUP no bpffs, EINVAL size not a power-of-2
 * multiple of the page size).
 */
export function eventsOpen(ringPath: string, lostPath: string, sizeBytes: number): EventsOpenResult {
  return native.eventsOpen(ringPath, lostPath, sizeBytes);
}

/**
 * Called on the loop with every record the ring held (raw bytes, in ring
 * order), the lost counter's current total, and CLOCK_REALTIME minus
 * CLOCK_BOOTTIME in nanoseconds (to turn a record's boot-time stamp into
 * wall time).
 */
export type OnBatch = (records: Buffer[], lostTotal: number, realtimeMinusBoottimeNs: number) => void;

export interface EventReader {
  /** Stop watching the ring; twice is a no-op. */
  close(): void;
}

/** Start draining the pinned ring. Errors: the kernel's errno opening the pins. */
export function openEventReader(ringPath: string, lostPath: string, onBatch: OnBatch): EventReader {
  return new native.EventReader(ringPath, lostPath, onBatch) as EventReader;
}
