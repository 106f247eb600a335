// Inode numbers for paths. The kernel speaks inodes, the handlers speak
// paths: each path gets a number the first time the kernel meets it and keeps
// it for the life of the mount (so forget needs no bookkeeping). The root is 1.
import path from 'node:path';

export const ROOT_INO = 1;

export class Inodes {
  private readonly byPath = new Map<string, number>([['/', ROOT_INO]]);
  private readonly byIno = new Map<number, string>([[ROOT_INO, '/']]);
  private next = ROOT_INO + 1;

  /** The path of an inode the kernel got from us; undefined if we never gave it. */
  path(ino: number): string | undefined {
    return this.byIno.get(ino);
  }

  /** The inode of a path, if it has one. */
  known(p: string): number | undefined {
    return this.byPath.get(p);
  }

  /** The inode of a path, allocated on first use. */
  ino(p: string): number {
    let n = this.byPath.get(p);
    if (n === undefined) {
      n = this.next++;
      this.byPath.set(p, n);
      this.byIno.set(n, p);
    }
    return n;
  }

  static child(parent: string, name: string): string {
    return path.posix.join(parent, name);
  }

  static parent(p: string): string {
    return path.posix.dirname(p);
  }
}
