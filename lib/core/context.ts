// What the core's parts share: the kernel, the catalogue as this kernel
// resolved it, and where to say what went wrong.
import type { KrsiError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ResolvedBehaviour } from './catalogue.js';
import type { KernelPort } from './kernel-port.js';

export interface CoreContext {
  readonly kernel: KernelPort;
  readonly log: Logger;
  readonly catalogue: readonly ResolvedBehaviour[];
  /** Behaviour → its hook on this kernel, for the behaviours that have a file. */
  readonly hookOf: ReadonlyMap<string, string>;
  /** Something wrong found outside a write (start-up, an observer): the log and one error_log entry. */
  warn(behaviour: string, err: KrsiError, fields?: Record<string, string | number | null>): void;
}
