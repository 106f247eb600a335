// The FUSE layer: a path-based, promise-based mount over the addon's
// libfuse3 low-level session (addon/fuse_*.cc).
export { mount, detachStaleMount, Mount } from './mount.js';
export { answeredSignal, POLL, POLL_ALWAYS } from './requests.js';
export type { FsHandlers, OpenReply, Stat, MountOptions } from './mount.js';
export type { Caller } from './native.js';
