// What krsifs remembers of each link it pinned, beside the pins: the object
// its program came from (the listing's object=), the mode it was attached in
// and the digest of its bytes and settings (a declared policy attached from
// the same is kept as it is). One symlink per link, in bpffs so that it lives
// exactly as long as the pins:
//   <root>/link-records/<link id> -> MODE \n DIGEST \n OBJECT
// (DIGEST '-' when none; OBJECT last, so that it may hold any byte but NUL.)
// krsifs before 2026-12 kept three: link-objects/, link-modes/, link-digests/;
// start-up folds them into one (migrate).
import { mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { readdir, readlink, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MODES, type Mode } from '../core/grammar.js';
import { onBpffs } from './bpffs.js';

export const RECORDS_DIR = 'link-records';
const OLD = { object: 'link-objects', mode: 'link-modes', digest: 'link-digests' } as const;

export interface LinkRecord {
  object: string;
  mode: Mode;
  digest?: string;
}

export function formatRecord(r: LinkRecord): string {
  return `${r.mode}\n${r.digest ?? '-'}\n${r.object}`;
}

/**
 * A record's target read back; a link without one (a program another tool
 * pinned, a crash before its record) or with one this version cannot read
 * runs as it was loaded: enforce, object unknown.
 */
export function parseRecord(target: string | null): { object: string | null; mode: Mode; digest: string | null } {
  const m = target === null ? null : /^([a-z]+)\n([^\n]*)\n(.*)$/s.exec(target);
  const mode = MODES.find((x) => x === m?.[1]);
  if (!m || !mode) return { object: null, mode: 'enforce', digest: null };
  return { object: m[3]!, mode, digest: m[2] === '-' ? null : m[2]! };
}

export class LinkRecords {
  constructor(private readonly root: string) {}

  get dir(): string {
    return path.join(this.root, RECORDS_DIR);
  }

  private at(linkId: number): string {
    return path.join(this.dir, String(linkId));
  }

  // written and forgotten on the loop, as the pins are (bpffs.ts)
  async write(linkId: number, r: LinkRecord): Promise<void> {
    // symlink(2) cannot replace: make it aside, rename it in
    const tmp = path.join(this.dir, `${linkId}-${process.pid}`);
    onBpffs(() => {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      rmSync(tmp, { force: true });
      symlinkSync(formatRecord(r), tmp);
      renameSync(tmp, this.at(linkId));
    }, `record link ${linkId}`);
  }

  async read(linkId: number): Promise<ReturnType<typeof parseRecord>> {
    return parseRecord(await readlink(this.at(linkId)).catch(() => null));
  }

  async forget(linkId: number): Promise<void> {
    try {
      rmSync(this.at(linkId), { force: true });
    } catch {
      // a record left behind is pruned at the next start
    }
  }

  /** Forget the records of links that are not in `live`. */
  async prune(live: ReadonlySet<number>): Promise<void> {
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      if (!live.has(Number(n))) await unlink(path.join(this.dir, n)).catch(() => {});
    }
  }

  /** Fold an older krsifs's three record directories into one record per live link, then remove them. */
  async migrate(live: ReadonlySet<number>): Promise<void> {
    const old = async (what: string, id: string) => readlink(path.join(this.root, what, id)).catch(() => null);
    for (const id of await readdir(path.join(this.root, OLD.object)).catch(() => [] as string[])) {
      const object = await old(OLD.object, id);
      if (object === null || !live.has(Number(id))) continue;
      const recorded = await old(OLD.mode, id);
      const mode = MODES.find((x) => x === recorded) ?? 'enforce';
      const digest = (await old(OLD.digest, id)) ?? undefined;
      await this.write(Number(id), { object, mode, digest });
    }
    for (const what of Object.values(OLD)) {
      const dir = path.join(this.root, what);
      for (const n of await readdir(dir).catch(() => [] as string[])) await unlink(path.join(dir, n)).catch(() => {});
      await rmdir(dir).catch(() => {});
    }
  }
}
