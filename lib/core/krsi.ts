// The core: behaviour files' commands, the registry of attached programs, the
// error log. Plain TypeScript: no FUSE here, and the kernel is a port.
import { KrsiError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { ResolvedBehaviour } from './catalogue.js';
import { ErrorLog } from './error-log.js';
import { parseLine, type Command, type Mode } from './grammar.js';
import { MONITOR_GLOBAL } from './globals.js';
import type { Attachment, Credentials, KernelPort, ObjectFacts, ObjectSource } from './kernel-port.js';
import { Registry, type Attached } from './registry.js';
import { SerialQueue } from './serial-queue.js';
import { escapeText } from '../text.js';
import { digestOf, formatDigest } from './digest.js';
import { formatStats, type BehaviourStats } from './observer.js';
import type { CoreContext } from './context.js';
import { Observers } from './observers.js';
import { adopt, detachEverything } from './adoption.js';
import { capacity, roomWithoutObserver } from './capacity.js';
import { checkLoaded, checkLoadedLine, checkObject, loadedName, type Target } from './object-checks.js';

export { MAX_LINKS_PER_HOOK } from './capacity.js';
export { loadedName } from './object-checks.js';

/** Where a line came from when it is not a write: a policy file's line (FILE:N) and its text there. */
export interface LineOrigin {
  where: string;
  line: string;
}

/** What the daemon adds to an object's load, from the facts the core already read. */
export interface LoadOptions {
  /** The globals krsifs sets (lib/core/globals.ts) that the object declares. */
  globals: Record<string, string>;
  /** Shared maps the object declares, by name, and where they are pinned. */
  reuseMaps?: Record<string, string>;
}

export interface KrsiOptions {
  errorLogSize?: number;
  log?: Logger;
  /** The events ring, the counters and the globals krsifs sets (lib/events-daemon.ts). */
  loadOptions?: (behaviour: string, hook: string, facts: ObjectFacts) => LoadOptions;
  /**
   * Why nothing may be attached on this kernel, whatever the line (the bpf LSM
   * built in but not active: the kernel would attach and never run it), or
   * null. Asked before each attach, after the line's own checks.
   */
  attachRefusal?: (hook: string) => KrsiError | null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The writer is being killed: it will never see the answer, and nothing more is done for it. */
const killed = () => new KrsiError('EINTR', 'the writer was killed before its line ran; nothing was done');

export class Krsi implements CoreContext {
  readonly errorLog: ErrorLog;
  readonly registry: Registry;
  readonly log: Logger;
  readonly hookOf = new Map<string, string>();
  private readonly queue = new SerialQueue();
  private readonly observers: Observers;

  constructor(
    readonly kernel: KernelPort,
    readonly catalogue: readonly ResolvedBehaviour[],
    private readonly opts: KrsiOptions = {},
  ) {
    this.errorLog = new ErrorLog(opts.errorLogSize);
    this.registry = new Registry(kernel);
    this.log = opts.log ?? silentLogger;
    for (const b of catalogue) if (b.hook) this.hookOf.set(b.behaviour, b.hook);
    this.observers = new Observers(this);
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
  async execute(behaviour: string, raw: Buffer | string, writer: Credentials, signal?: AbortSignal, origin?: LineOrigin): Promise<void> {
    const text = typeof raw === 'string' ? raw : decodeLine(raw);
    let source: ObjectSource | undefined;
    try {
      if (text instanceof KrsiError) throw text;
      const cmd = parseLine(text);
      // The object is read before the line queues: a file on a stalled
      // filesystem then holds up its own writer only, not the lines other
      // writers send to this behaviour.
      if (cmd.kind === 'attach') {
        source = cmd.programId !== undefined
          ? { data: Buffer.alloc(0), path: cmd.path, program: { id: cmd.programId, source: cmd.path }, close() {} }
          : await this.kernel.readObject(writer, cmd.path, signal);
      }
      const read = source;
      await this.queue.run(behaviour, () => {
        if (signal?.aborted) throw killed();
        return this.run(behaviour, cmd, read);
      });
    } catch (e) {
      let err = KrsiError.from(e);
      if (origin) {
        // a policy file's line: error_log names the file and line number
        err = new KrsiError(err.errno, `${origin.where}: ${err.message}`, {
          verifierLog: err.verifierLog,
          details: { ...err.details, policy: origin.where },
        });
        this.fail(behaviour, origin.line, err, 'policy line failed');
      } else {
        this.fail(behaviour, typeof text === 'string' ? text : lossy(raw), err);
      }
      throw err;
    } finally {
      source?.close();
    }
  }

  /** Record a failed write that never reached execute (E2BIG, EPERM at open, …); returns `err`. */
  fail(behaviour: string, line: string, err: KrsiError, what = 'write failed'): KrsiError {
    this.errorLog.add(behaviour, line, err);
    const object = typeof err.details.object === 'string' ? err.details.object : undefined;
    this.log.warn(what, { file: behaviour, line, code: err.code, error: err.message, object });
    return err;
  }

  /** Something wrong found outside a write (at start-up): the log and one error_log entry. */
  warn(behaviour: string, err: KrsiError, fields: Record<string, string | number | null> = {}): void {
    this.errorLog.add(behaviour, '', err);
    this.log.warn(err.message, { file: behaviour, code: err.code, ...fields });
  }

  /**
   * The file's text: one line per attached program, tab-separated fields,
   * read from the kernel now, in attach order. HOOK is where the link really
   * runs.
   */
  async listing(behaviour: string): Promise<string> {
    const listed = await this.registry.list(behaviour);
    this.observers.listed(behaviour, listed.length === 0, (task) => this.queue.run(behaviour, task));
    return listed
      .map((a) => `${a.name}\t${a.hook ?? '?'}\tprog_id=${a.progId}\tlink_id=${a.linkId}\tobject=${a.object === null ? '?' : escapeText(a.object)}\tmode=${a.mode}\n`)
      .join('');
  }

  /** Start-up: take over what earlier daemons pinned (lib/core/adoption.ts). Returns how many programs. */
  adopt(): Promise<number> {
    return adopt(this, this.observers);
  }

  /** --ephemeral's clean stop: detach every program. Returns how many. */
  detachEverything(): Promise<number> {
    return detachEverything(this, this.observers);
  }

  /**
   * The `stats` file: one line per behaviour with programs attached, its
   * counters read from the kernel now (they run since its first attach).
   */
  async statsText(): Promise<string> {
    return formatStats(await this.stats());
  }

  async stats(): Promise<BehaviourStats[]> {
    const rows: BehaviourStats[] = [];
    for (const [behaviour, hook] of this.hookOf) {
      const programs = (await this.registry.list(behaviour)).length;
      if (programs === 0) continue;
      const c = await this.kernel.counts(behaviour);
      rows.push({ behaviour, hook, programs, ...c });
    }
    return rows;
  }

  /** The `hooks` file: every behaviour, its hook here or why it has none. */
  hooksText(): string {
    return this.catalogue
      .map((b) =>
        b.hook
          ? `${b.behaviour}\t${b.hook}\tavailable\n`
          : `${b.behaviour}\t-\tunavailable: ${escapeText(b.reason ?? '')}\n`,
      )
      .join('');
  }

  private async run(behaviour: string, cmd: Command, source: ObjectSource | undefined): Promise<void> {
    const hook = this.hookOf.get(behaviour);
    if (!hook) throw new KrsiError('ENODEV', `${behaviour}: no LSM hook for this behaviour on this kernel`);
    switch (cmd.kind) {
      case 'empty':
        return;
      case 'detach':
        try {
          return await this.detach(behaviour, cmd.name);
        } finally {
          await this.observers.settle(behaviour);
        }
      case 'detachAll': {
        try {
          const listed = await this.registry.list(behaviour);
          for (const a of listed) {
            await this.detach(behaviour, a.name, listed).catch((e: KrsiError) => {
              if (e.code !== 'ENOENT') throw e; // removed meanwhile: as good as detached
            });
          }
          return;
        } finally {
          await this.observers.settle(behaviour);
        }
      }
      case 'attach':
        try {
          const target = { behaviour, hook, catalogue: this.catalogue };
          return source!.program
            ? await this.attachLoaded(target, source!, cmd.globals, cmd.mode)
            : await this.attachObject(target, source!, cmd.globals, cmd.mode);
        } catch (e) {
          await this.observers.settle(behaviour); // a failed first attach leaves no observer behind
          throw e;
        }
    }
  }

  /** An object file: checked, loaded with krsifs's own globals and maps, attached with its observer in place. */
  private async attachObject(target: Target, source: ObjectSource, globals: Record<string, string>, mode: Mode): Promise<void> {
    const { behaviour, hook } = target;
    const facts = source.facts!;
    let done: Attachment;
    try {
      checkObject(target, source.path, facts, globals, mode);
      this.refuseIfUnenforced(hook);
      const extra = this.opts.loadOptions?.(behaviour, hook, facts) ?? { globals: {} };
      // hashed on the loop in slices while the observer goes in and the programs load
      const digest = digestOf(source.data, globals, mode).then(formatDigest);
      done = await this.observers.around(
        behaviour, hook,
        () => this.kernel.attach(source, {
          behaviour, hook, object: source.path, mode, digest,
          globals: { ...globals, ...(mode === 'monitor' ? { [MONITOR_GLOBAL]: '1' } : {}), ...extra.globals },
          reuseMaps: extra.reuseMaps,
        }),
        async (e) => roomWithoutObserver(await capacity(this, e, hook, facts)),
      );
    } catch (e) {
      // say which file the writer's path resolved to: it is what was refused
      let err = KrsiError.from(e);
      err.details.object ??= source.path;
      if (err.code === 'E2BIG') err = await capacity(this, err, hook, facts);
      throw err;
    }
    this.attached(behaviour, done);
  }

  /**
   * A program another loader loaded (pinned, by id, the writer's fd): checked
   * with the kernel's facts, then attached by a link of our own under its
   * kernel name (loadedName), replacing a program of that name as an
   * object's would.
   */
  private async attachLoaded(target: Target, source: ObjectSource, globals: Record<string, string>, mode: Mode): Promise<void> {
    const { behaviour, hook } = target;
    const { id, source: where } = source.program!;
    let done: Attachment;
    try {
      checkLoadedLine(target, where, id, globals, mode);
      const facts = await this.kernel.programInfo(id).catch((e: unknown) => {
        const err = KrsiError.from(e);
        throw err.code === 'ENOENT' ? new KrsiError('ENOENT', `attach ${where}: no loaded program has id ${id}`, { details: { object: where, progId: id } }) : err;
      });
      checkLoaded(target, where, id, facts);
      this.refuseIfUnenforced(hook);
      const name = loadedName(facts.name, id);
      done = await this.observers.around(
        behaviour, hook,
        () => this.kernel.attach(source, { behaviour, hook, object: where, mode, globals: {}, name }),
        async () => true,
      );
    } catch (e) {
      const err = KrsiError.from(e);
      err.details.object ??= where;
      throw err;
    }
    this.attached(behaviour, done);
  }

  /** Throws what the daemon says forbids every attach here (lib/daemon.ts: the bpf LSM inactive). */
  private refuseIfUnenforced(hook: string): void {
    const err = this.opts.attachRefusal?.(hook);
    if (err) throw err;
  }

  private attached(behaviour: string, { attached, replaced }: Attachment): void {
    this.registry.touch(behaviour);
    for (const p of attached) {
      this.log.info('attached', { file: behaviour, hook: p.hook, program: p.name, prog_id: p.progId, link_id: p.linkId, object: p.object, mode: p.mode });
    }
    for (const old of replaced) {
      this.log.info('replaced', { file: behaviour, program: old.pin.name, prog_id: old.pin.progId, link_id: old.pin.linkId });
      if (!old.released) this.stillHeld(behaviour, old.pin.name, old.pin.linkId);
    }
  }

  private async detach(behaviour: string, name: string, listing?: Attached[]): Promise<void> {
    const listed = listing ?? (await this.registry.list(behaviour));
    const notAttached = () =>
      new KrsiError(
        'ENOENT',
        `detach ${name}: no program of that name on ${behaviour} (attached: ${listed.map((x) => x.name).join(', ') || 'none'})`,
      );
    // only a listed name: it is a pin's file name, never a path
    if (!listed.some((a) => a.name === name)) throw notAttached();
    let gone;
    try {
      gone = await this.kernel.detach(behaviour, name);
    } catch (e) {
      if ((e as KrsiError).code === 'ENOENT') throw notAttached(); // removed meanwhile
      throw e;
    }
    this.registry.touch(behaviour);
    this.log.info('detached', { file: behaviour, program: name, prog_id: gone.pin.progId, link_id: gone.pin.linkId });
    if (!gone.released) this.stillHeld(behaviour, name, gone.pin.linkId);
  }

  private stillHeld(behaviour: string, name: string, linkId: number): void {
    // unpinned, but another process holds an fd of the link: it stays attached until that fd closes
    this.log.warn('unpinned, but another process still holds the link: it stays attached until that process closes it', {
      file: behaviour, program: name, link_id: linkId,
    });
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
