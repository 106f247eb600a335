// The daemon applies a policy file with its own rights (root): whoever can
// change a .conf, or an object one names, can load kernel code. So the
// directory, each .conf and each object it names must be as trusted as the
// daemon: owned by root (or the daemon's user), writable by nobody else, and
// so must every directory above them (a directory others may write to lets
// them swap the file), unless it is sticky (like /tmp: others cannot rename
// or remove what root owns there). The checks follow symlinks, and check
// the directories of the path the symlinks lead to.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { strerror } from '../core/strerror.js';

const S_ISVTX = 0o1000;

function owners(): Set<number> {
  return new Set([0, process.geteuid?.() ?? 0]);
}

/**
 * Throws EPERM naming the first component of `p` that someone other than
 * root could change; the stat's errno (ENOENT, EACCES…) when it cannot be
 * checked. `what` names `p` in the message ("policy file", "object").
 */
export async function checkTrusted(p: string, what: string): Promise<void> {
  const failed = (e: unknown, at: string) => {
    const err = KrsiError.from(e);
    return new KrsiError(err.errno, `${what} ${p}: ${at === p ? '' : `${at}: `}${strerror(err.errno)}`, { details: { path: at } });
  };
  let real: string;
  try {
    real = await realpath(p);
  } catch (e) {
    throw failed(e, p);
  }
  const ok = owners();
  for (let cur = real, first = true; ; first = false) {
    const st = await stat(cur).catch((e: unknown) => {
      throw failed(e, cur);
    });
    const shown = cur === p ? p : `${cur}${first ? ` (${p} resolves there)` : ` (above ${p})`}`;
    if (!ok.has(st.uid)) {
      throw new KrsiError('EPERM', `${what} ${shown} is owned by uid ${st.uid}: krsifs applies it with root's rights, so it ` +
        `must be owned by root and writable by root only (chown root)`, { details: { path: cur } });
    }
    const groupOrOther = st.mode & 0o022;
    const stickyDir = st.isDirectory() && (st.mode & S_ISVTX) !== 0 && !first;
    if (groupOrOther && !stickyDir) {
      const who = [st.mode & 0o020 ? 'its group' : '', st.mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
      throw new KrsiError('EPERM', `${what} ${shown} is writable by ${who} ` +
        `(mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): krsifs applies it with root's rights, so it must be ` +
        `writable by root only (chmod go-w)`, { details: { path: cur } });
    }
    if (cur === '/') return;
    cur = path.dirname(cur);
  }
}
