// The 64-bit id of a behaviour that krsifs hands to its BPF objects
// (krsi_behaviour_id in bpf/krsi_verdict.h): the key of the shared krsi_stats
// map and the mark a policy leaves in krsi_reported for the observer. FNV-1a
// over the name's UTF-8 bytes: stable across daemons and kernels, so counters
// pinned by one daemon are found by the next.
const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = (1n << 64n) - 1n;

export function behaviourId(behaviour: string): bigint {
  let h = OFFSET;
  for (const byte of Buffer.from(behaviour, 'utf8')) h = ((h ^ BigInt(byte)) * PRIME) & MASK;
  return h;
}
