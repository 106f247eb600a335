// A writer for the "newc" cpio format, the one the kernel unpacks as an
// initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
// Writing it here instead of running cpio(1) over a copied staging tree
// avoids copying ~100 MB twice, and lets an unprivileged build add the
// device nodes the kernel needs before devtmpfs is mounted (/dev/console).
import { open, readFile, type FileHandle } from 'node:fs/promises';

export type CpioEntry =
  | { type: 'dir'; name: string; mode?: number }
  | { type: 'file'; name: string; mode: number; mtime?: number; src: string }
  | { type: 'data'; name: string; mode: number; data: Buffer }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'char'; name: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

export class CpioWriter {
  private ino = 1;
  private offset = 0;
  private constructor(private readonly fh: FileHandle) {}

  static async create(file: string): Promise<CpioWriter> {
    return new CpioWriter(await open(file, 'w'));
  }

  private async put(buf: Buffer): Promise<void> {
    await this.fh.write(buf);
    this.offset += buf.length;
  }

  private async record(name: string, mode: number, body: Buffer, opts: { nlink?: number; mtime?: number; rmajor?: number; rminor?: number } = {}) {
    const nameBuf = Buffer.from(name + '\0');
    const header =
      '070701' +
      [
        this.ino++, mode, 0, 0, opts.nlink ?? 1, opts.mtime ?? 0, body.length,
        0, 0, opts.rmajor ?? 0, opts.rminor ?? 0, nameBuf.length, 0,
      ].map(hex).join('');
    await this.put(Buffer.concat([Buffer.from(header), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length))]));
    if (body.length) await this.put(Buffer.concat([body, Buffer.alloc(pad4(body.length))]));
  }

  /** Append one entry; names are relative ("usr/bin/node"), parents must come first. */
  async add(e: CpioEntry): Promise<void> {
    switch (e.type) {
      case 'dir':
        return this.record(e.name, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), { nlink: 2 });
      case 'file':
        return this.record(e.name, S_IFREG | (e.mode & 0o7777), await readFile(e.src), { mtime: e.mtime ?? 0 });
      case 'data':
        return this.record(e.name, S_IFREG | (e.mode & 0o7777), e.data);
      case 'symlink':
        return this.record(e.name, S_IFLNK | 0o777, Buffer.from(e.target));
      case 'char':
        return this.record(e.name, S_IFCHR | (e.mode & 0o7777), Buffer.alloc(0), { rmajor: e.major, rminor: e.minor });
    }
  }

  /** Write the trailer and close; returns the archive's size in bytes. */
  async finish(): Promise<number> {
    await this.record('TRAILER!!!', 0, Buffer.alloc(0));
    await this.fh.close();
    return this.offset;
  }
}
