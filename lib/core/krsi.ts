// The core: behaviour files' commands, the registry of attached programs, the
// error log. Plain TypeScript: no FUSE here, and the kernel is a port.
import path from 'node:path';
import { KrsiError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { ResolvedBehaviour } from './catalogue.js';
import { ErrorLog } from './error-log.js';
import { parseLine, type Command } from './grammar.js';
import type { Caller, KernelPort, ObjectFacts } from './kernel-port.js';
import { Registry, type Attached } from './registry.js';
import { SerialQueue } from './serial-queue.js';

export interface KrsiOptions {
  errorLogSize?: number;
  log?: Logger;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Krsi {
  readonly errorLog: ErrorLog;
  readonly registry = new Registry();
  private readonly queue = new SerialQueue();
  private readonly log: Logger;
  private readonly hookOf = new Map<string, string>();

  constructor(
    private readonly kernel: KernelPort,
    readonly catalogue: readonly ResolvedBehaviour[],
    opts: KrsiOptions = {},
  ) {
    this.errorLog = new ErrorLog(opts.errorLogSize);
    this.log = opts.log ?? silentLogger;
    for (const b of catalogue) if (b.hook) this.hookOf.set(b.behaviour, b.hook);
  }

  /** Behaviours that have a file: those whose hook this kernel offers. */
  behaviours(): string[] {
    return [...this.hookOf.keys()];
  }

  hook(behaviour: string): string | undefined {
    return this.hookOf.get(behaviour);
  }

  /**
   * Run one line written to a behaviour file. Resolves when the kernel has
   * answered; on failure, records one error_log entry and throws the
   * KrsiError whose errno the writer gets. Lines for one behaviour run one
   * after another; behaviours do not wait for each other.
   */
  execute(behaviour: string, raw: Buffer | string, caller: Caller): Promise<void> {
    const text = typeof raw === 'string' ? raw : decodeLine(raw);
    return this.queue.run(behaviour, async () => {
      try {
        if (text instanceof KrsiError) throw text;
        await this.run(behaviour, parseLine(text), caller);
      } catch (e) {
        const err = KrsiError.from(e);
        this.fail(behaviour, typeof text === 'string' ? text : lossy(raw), err);
        throw err;
      }
    });
  }

  /** Record a failed write that never reached execute (E2BIG, EPERM at open, …). */
  fail(behaviour: string, line: string, err: KrsiError): void {
    this.errorLog.add(behaviour, line, err);
    const object = typeof err.details.object === 'string' ? err.details.object : undefined;
    this.log.warn('write failed', { file: behaviour, line, code: err.code, error: err.message, object });
  }

  /** The file's text: one line per attached program, tab-separated fields. */
  listing(behaviour: string): string {
    return this.registry
      .list(behaviour)
      .map((a) => `${a.name}\t${a.hook}\tprog_id=${a.progId}\tlink_id=${a.linkId}\tobject=${a.object}\n`)
      .join('');
  }

  /** The `hooks` file: every behaviour, its hook here or why it has none. */
  hooksText(): string {
    return this.catalogue
      .map((b) =>
        b.hook
          ? `${b.behaviour}\t${b.hook}\tavailable\n`
          : `${b.behaviour}\t-\tunavailable: ${b.reason}\n`,
      )
      .join('');
  }

  private async run(behaviour: string, cmd: Command, caller: Caller): Promise<void> {
    const hook = this.hookOf.get(behaviour);
    if (!hook) throw new KrsiError('ENODEV', `${behaviour}: no LSM hook for this behaviour on this kernel`);
    switch (cmd.kind) {
      case 'empty':
        return;
      case 'detach':
        return this.detach(behaviour, cmd.name);
      case 'detachAll':
        for (const a of this.registry.list(behaviour)) await this.detach(behaviour, a.name);
        return;
      case 'attach':
        return this.attach(behaviour, hook, cmd.path, cmd.globals, caller);
    }
  }

  private async attach(
    behaviour: string,
    hook: string,
    objectPath: string,
    globals: Record<string, string>,
    caller: Caller,
  ): Promise<void> {
    const { data, path: resolved } = await this.kernel.readObject(caller.pid, objectPath);
    let programs;
    try {
      const facts = await this.kernel.inspect(data, path.basename(resolved));
      this.check(behaviour, hook, resolved, facts, globals);
      programs = await this.kernel.loadAndAttach(data, hook, { globals, objectName: path.basename(resolved) });
    } catch (e) {
      // say which file the writer's path resolved to: it is what was refused
      const err = KrsiError.from(e);
      err.details.object ??= resolved;
      throw err;
    }
    // New programs are in; only now let the ones they replace go, so the
    // hook is never left unguarded.
    for (const p of programs) {
      const old = this.registry.put({
        name: p.name,
        behaviour,
        hook,
        progId: p.progId,
        linkId: p.linkId,
        object: resolved,
        link: p.link,
        attachedAt: new Date(),
      });
      this.log.info('attached', { file: behaviour, hook, program: p.name, prog_id: p.progId, link_id: p.linkId, object: resolved });
      if (old) await this.release(old, 'replaced');
    }
  }

  /** Refuse, before the kernel sees it, an object this file cannot take. */
  private check(
    behaviour: string,
    hook: string,
    object: string,
    facts: ObjectFacts,
    globals: Record<string, string>,
  ): void {
    const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object, behaviour, hook } });
    if (facts.programs.length === 0) throw einval(`attach ${object}: the object has no program`);
    for (const p of facts.programs) {
      if (!p.isLsm) {
        throw einval(
          `attach ${object}: program ${p.name} is a ${p.type} program (SEC("${p.section}")); ` +
            `a behaviour file takes only LSM programs (SEC("lsm"), SEC("lsm.s") or SEC("lsm/${hook}"))`,
        );
      }
      if (p.hook !== null && p.hook !== hook) {
        const there = this.catalogue.find((b) => b.hook === p.hook);
        throw einval(
          `attach ${object}: program ${p.name} is for hook ${p.hook} (SEC("${p.section}")) but ${behaviour} ` +
            `attaches to ${hook}` +
            (there ? `: write it to ${there.behaviour} instead` : '; use SEC("lsm") to let the file choose the hook'),
        );
      }
    }
    const known = new Set(facts.globals.map((g) => g.name));
    for (const key of Object.keys(globals)) {
      if (!known.has(key)) {
        const have = [...known].join(', ') || 'none';
        throw einval(`attach ${object}: no const volatile global named ${key} in the object (it has: ${have})`);
      }
    }
  }

  private async detach(behaviour: string, name: string): Promise<void> {
    const a = this.registry.get(behaviour, name);
    if (!a) {
      const names = this.registry.list(behaviour).map((x) => x.name);
      throw new KrsiError(
        'ENOENT',
        `detach ${name}: no program of that name on ${behaviour} (attached: ${names.join(', ') || 'none'})`,
      );
    }
    await a.link.detach();
    this.registry.remove(behaviour, name);
    this.log.info('detached', { file: behaviour, program: name, prog_id: a.progId, link_id: a.linkId });
  }

  private async release(old: Attached, why: string): Promise<void> {
    try {
      await old.link.detach();
      this.log.info(why, { file: old.behaviour, program: old.name, prog_id: old.progId, link_id: old.linkId });
    } catch (e) {
      // The new program is attached and listed; the old link failing to go is
      // worth a warning, not a failed write.
      this.log.warn('detach of replaced program failed', { program: old.name, error: (e as Error).message });
    }
  }
}

function decodeLine(raw: Buffer): string | KrsiError {
  try {
    return utf8.decode(raw);
  } catch {
    return new KrsiError('EINVAL', 'parse line: not valid UTF-8');
  }
}

function lossy(raw: Buffer | string): string {
  return typeof raw === 'string' ? raw : raw.toString('utf8');
}
