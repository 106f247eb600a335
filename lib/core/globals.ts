// The globals krsifs itself sets in an object's .rodata before load (from the
// behaviour file and the line's mode=), never the writer through KEY=VALUE:
// a line setting one would claim another behaviour's counters or switch
// monitor mode behind krsifs's back (and the listing's mode= would lie).
// bpf/krsi_events.h and bpf/krsi_verdict.h declare them.

/** The behaviour file the object was written to. */
export const BEHAVIOUR_GLOBAL = 'krsi_behaviour';
/** The hook the object is attached to. */
export const HOOK_GLOBAL = 'krsi_hook';
/** lib/core/behaviour-id.ts of the behaviour. */
export const BEHAVIOUR_ID_GLOBAL = 'krsi_behaviour_id';
/** 1 for `PATH mode=monitor`: krsi_refuse reports and allows. */
export const MONITOR_GLOBAL = 'krsi_monitor';

export const KRSIFS_GLOBALS: readonly string[] = [BEHAVIOUR_GLOBAL, HOOK_GLOBAL, BEHAVIOUR_ID_GLOBAL, MONITOR_GLOBAL];
