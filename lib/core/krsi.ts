// The core: behaviour files' commands, the registry of attached programs, the
// error log. Plain TypeScript: no FUSE here, and the kernel is a port.
import path from 'node:path';
import { KrsiError, errnoOf } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import type { ResolvedBehaviour } from './catalogue.js';
import { ErrorLog } from './error-log.js';
import { parseLine, type Command, type Mode } from './grammar.js';
import { KRSIFS_GLOBALS, MONITOR_GLOBAL } from './globals.js';
import type { AttachedProgram, Credentials, KernelPort, LoadedProgramRef, ObjectFacts, OpenedObjectRef } from './kernel-port.js';
import { Registry, committedPin, isTemporaryPin, programOfPin, temporaryPin, type Attached } from './registry.js';
import { SerialQueue } from './serial-queue.js';
import { companionOf, isCompanionHook } from './companion.js';
import { escapeText } from '../text.js';
import { digestOf, formatDigest } from './digest.js';
import { formatStats, type BehaviourStats } from './observer.js';

/** Where a line came from when it is not a write: a policy file's line (FILE:N) and its text there. */
export interface LineOrigin {
  where: string;
  line: string;
}

/**
 * BPF_MAX_TRAMP_LINKS on x86-64 (27 on s390x): the programs one hook takes,
 * LSM links and fentry/fexit/fmod_ret on bpf_lsm_<hook> together. Only said
 * when the failing attach does not let us measure it.
 */
export const MAX_LINKS_PER_HOOK = 38;

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

const errnoE2BIG = errnoOf('E2BIG');

const utf8 = new TextDecoder('utf-8', { fatal: true });

type ObjectBytes = Awaited<ReturnType<KernelPort['readObject']>>;

/** The writer is being killed: it will never see the answer, and nothing more is done for it. */
const killed = () => new KrsiError('EINTR', 'the writer was killed before its line ran; nothing was done');

export class Krsi {
  readonly errorLog: ErrorLog;
  readonly registry: Registry;
  private readonly queue = new SerialQueue();
  private readonly log: Logger;
  private readonly hookOf = new Map<string, string>();

  constructor(
    private readonly kernel: KernelPort,
    readonly catalogue: readonly ResolvedBehaviour[],
    private readonly opts: KrsiOptions = {},
  ) {
    this.errorLog = new ErrorLog(opts.errorLogSize);
    this.registry = new Registry(kernel);
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
  async execute(behaviour: string, raw: Buffer | string, writer: Credentials, signal?: AbortSignal, origin?: LineOrigin): Promise<void> {
    const text = typeof raw === 'string' ? raw : decodeLine(raw);
    let object: ObjectBytes | undefined;
    try {
      if (text instanceof KrsiError) throw text;
      const cmd = parseLine(text);
      // The object is read before the line queues: a file on a stalled
      // filesystem then holds up its own writer only, not the lines other
      // writers send to this behaviour.
      object =
        cmd.kind !== 'attach'
          ? undefined
          : cmd.programId !== undefined
            ? { data: Buffer.alloc(0), path: cmd.path, program: { id: cmd.programId, source: cmd.path } }
            : await this.kernel.readObject(writer, cmd.path, signal);
      const read = object;
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
      object?.object?.close(); // loaded or not, libbpf's copy is done with
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
   * read from the kernel now (the behaviour's pins, their links and
   * programs), in attach order. HOOK is where the link really runs.
   */
  async listing(behaviour: string): Promise<string> {
    const listed = await this.registry.list(behaviour);
    // found empty (its pins removed behind our back): its observer goes too,
    // in the behaviour's queue so that an attach in flight keeps its own
    if (listed.length === 0) void this.queue.run(behaviour, () => this.settleObserver(behaviour)).catch(() => {});
    return listed
      .map((a) => `${a.name}\t${a.hook ?? '?'}\tprog_id=${a.progId}\tlink_id=${a.linkId}\tobject=${a.object === null ? '?' : escapeText(a.object)}\tmode=${a.mode}\n`)
      .join('');
  }

  /**
   * Start-up: take over what earlier daemons pinned. The temporary pins of an
   * attach a crash interrupted are settled first: before its commit point
   * they are removed (its write never succeeded, what was attached stays),
   * after it they are renamed to their final names (all of the object goes
   * in, as it would have). A program running on another hook than its
   * behaviour's now, or pinned for a behaviour that has no file, is reported
   * (log and error_log) and left attached. Returns how many programs were
   * adopted.
   */
  async adopt(): Promise<number> {
    const live = new Set<number>();
    let adopted = 0;
    for (const dir of await this.kernel.pinnedBehaviours()) {
      const hook = this.hookOf.get(dir);
      await this.settleTemporaryPins(dir);
      for (const p of await this.kernel.pins(dir)) {
        const where = `${this.kernel.pinRoot}/${dir}/${p.name}`;
        if (isTemporaryPin(p.name)) {
          live.add(p.linkId); // could not be settled (logged): keep its object record
          continue;
        }
        live.add(p.linkId);
        adopted++;
        const fields = { program: p.name, hook: p.hook, prog_id: p.progId, link_id: p.linkId, object: p.object };
        this.log.info('adopted', { file: dir, ...fields });
        if (!hook) {
          const why = this.catalogue.find((b) => b.behaviour === dir)?.reason || 'it is not in the catalogue';
          this.warn(dir, new KrsiError('ESTALE',
            `${dir}: pinned program ${p.name} runs on hook ${p.hook ?? '?'} but ${dir} has no file here (${why}); ` +
              `it stays attached; remove it with: rm ${where}`), fields);
        } else if (p.hook !== hook && !isCompanionHook(p.hook)) {
          this.warn(dir, new KrsiError('ESTALE',
            `${dir}: pinned program ${p.name} runs on hook ${p.hook ?? '?'} but the catalogue now maps the behaviour to ` +
              `${hook}; it stays attached on ${p.hook ?? '?'}; detach it with '!${p.name}'`), fields);
        }
      }
    }
    await this.kernel.pruneObjects(live);
    await this.adoptObservers();
    return adopted;
  }

  /** Start-up: a behaviour with programs and no observer gets one; an observer without programs goes. */
  private async adoptObservers(): Promise<void> {
    for (const behaviour of this.behaviours()) {
      if ((await this.registry.list(behaviour)).length === 0) continue;
      const had = await this.kernel.observer(behaviour).catch(() => null);
      if (had) this.log.info('adopted observer', { file: behaviour, link_id: had.linkId });
      else {
        const hook = this.hookOf.get(behaviour)!;
        const { failed } = await this.ensureObserver(behaviour, hook);
        if (failed) this.notObserved(behaviour, hook, failed.errno, failed.message);
      }
    }
    for (const behaviour of await this.kernel.observedBehaviours()) {
      if (this.hookOf.has(behaviour) && (await this.registry.list(behaviour)).length > 0) continue;
      await this.settleObserver(behaviour);
    }
  }

  /** An attach a crash interrupted: roll it forward when it had committed (a NAME-commit pin exists), back otherwise. */
  private async settleTemporaryPins(dir: string): Promise<void> {
    const temp = (await this.kernel.pins(dir)).filter((p) => isTemporaryPin(p.name));
    const committed = temp.some((p) => p.name === committedPin(programOfPin(p.name)));
    for (const p of temp) {
      const where = `${this.kernel.pinRoot}/${dir}/${p.name}`;
      const fields = { file: dir, pin: where, prog_id: p.progId, link_id: p.linkId };
      try {
        if (committed) {
          const old = await this.kernel.renamePin(dir, p.name, programOfPin(p.name));
          if (old) await this.kernel.forgetObject(old.pin.linkId);
          this.log.warn('finished an attach a crash interrupted after its commit (every program of the object was pinned)', {
            ...fields, program: programOfPin(p.name), replaced_link_id: old?.pin.linkId ?? null,
          });
        } else {
          await this.kernel.unpin(dir, p.name);
          await this.kernel.forgetObject(p.linkId);
          this.log.warn('removed the temporary pin of an attach that never finished (its write failed)', fields);
        }
      } catch (e) {
        this.log.error('cannot settle a temporary pin', { pin: where, error: (e as Error).message });
      }
    }
  }

  /** --ephemeral's clean stop: remove every pin under the pin root. Returns how many programs were detached. */
  async detachEverything(): Promise<number> {
    let n = 0;
    for (const dir of await this.kernel.pinnedBehaviours()) {
      for (const p of await this.kernel.pins(dir)) {
        try {
          const { released } = await this.kernel.unpin(dir, p.name);
          await this.kernel.forgetObject(p.linkId);
          n++;
          this.log.info('detached', { file: dir, program: p.name, prog_id: p.progId, link_id: p.linkId, released, why: 'ephemeral' });
        } catch (e) {
          this.log.error('detach failed', { file: dir, program: p.name, error: (e as Error).message });
        }
      }
    }
    for (const behaviour of await this.kernel.observedBehaviours()) await this.settleObserver(behaviour);
    return n;
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
    for (const behaviour of this.behaviours()) {
      const programs = (await this.registry.list(behaviour)).length;
      if (programs === 0) continue;
      const c = await this.kernel.counts(behaviour);
      rows.push({ behaviour, hook: this.hookOf.get(behaviour)!, programs, ...c });
    }
    return rows;
  }

  /**
   * Attach the behaviour's denial observer unless it has one: before its
   * first program, so that the program's first denial is seen. `fresh`:
   * attached now; `failed`: why it could not be, for the caller to report
   * once the program is in (a line that fails anyway needs no such word).
   */
  private async ensureObserver(behaviour: string, hook: string): Promise<{ fresh: boolean; failed?: KrsiError }> {
    try {
      if (await this.kernel.observer(behaviour)) return { fresh: false };
      const { linkId } = await this.kernel.attachObserver(behaviour, hook);
      this.log.info('observer attached', { file: behaviour, hook, link_id: linkId });
      return { fresh: true };
    } catch (e) {
      const err = KrsiError.from(e);
      if (err.details.returnsVoid === true) {
        // its "verdict" is garbage: there are no denials to see
        this.log.info('no observer: the hook returns void', { file: behaviour, hook });
        return { fresh: false };
      }
      return { fresh: false, failed: err };
    }
  }

  private notObserved(behaviour: string, hook: string, errno: number, why: string): void {
    this.warn(behaviour, new KrsiError(errno,
      `${behaviour}: denials on ${hook} are not reported or counted (krsifs's observer is not attached): ${why}; ` +
        `the programs still enforce`, { details: { behaviour, hook } }));
  }

  /** The behaviour has no program left: its observer and its counters go. */
  private async settleObserver(behaviour: string): Promise<void> {
    try {
      if ((await this.kernel.pins(behaviour)).length > 0) return;
      if (await this.kernel.detachObserver(behaviour)) this.log.info('observer detached', { file: behaviour });
    } catch (e) {
      this.log.error('cannot remove the observer', { file: behaviour, error: (e as Error).message });
    }
  }

  /**
   * Run the kernel's attach with the behaviour's observer in place (checks
   * done, so a refused line costs no observer). When the observer just took
   * the hook's last slot and the programs then find it full, it yields if
   * they would fit without it (`fits`, given the E2BIG): the programs are
   * attached, unobserved, and that is said.
   */
  private async observed<T>(behaviour: string, hook: string, attach: () => Promise<T>, fits: (e: KrsiError) => Promise<boolean>): Promise<T> {
    const { fresh, failed } = await this.ensureObserver(behaviour, hook);
    let r: T;
    try {
      r = await attach();
    } catch (e) {
      const err = KrsiError.from(e);
      if (!fresh || err.code !== 'E2BIG' || !(await fits(err))) throw e;
      await this.kernel.detachObserver(behaviour).catch(() => false);
      this.log.info('observer detached: the hook has no room for it and the program', { file: behaviour, hook });
      r = await attach();
      this.notObserved(behaviour, hook, errnoE2BIG,
        'the hook had room for one more program and the policy came first (the observer takes a slot of its own)');
      return r;
    }
    if (failed) this.notObserved(behaviour, hook, failed.errno, failed.message);
    return r;
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

  private async run(behaviour: string, cmd: Command, object: ObjectBytes | undefined): Promise<void> {
    const hook = this.hookOf.get(behaviour);
    if (!hook) throw new KrsiError('ENODEV', `${behaviour}: no LSM hook for this behaviour on this kernel`);
    switch (cmd.kind) {
      case 'empty':
        return;
      case 'detach':
        try {
          return await this.detach(behaviour, cmd.name);
        } finally {
          await this.settleObserver(behaviour);
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
          await this.settleObserver(behaviour);
        }
      }
      case 'attach':
        try {
          return await this.attach(behaviour, hook, object!, cmd.globals, cmd.mode);
        } catch (e) {
          await this.settleObserver(behaviour); // a failed first attach leaves no observer behind
          throw e;
        }
    }
  }

  private async attach(
    behaviour: string,
    hook: string,
    { data, path: resolved, program, object }: ObjectBytes,
    globals: Record<string, string>,
    mode: Mode,
  ): Promise<void> {
    if (program) return this.attachLoaded(behaviour, hook, program, globals, mode);
    let programs: AttachedProgram[];
    let facts: ObjectFacts | undefined;
    try {
      if (!object) throw new KrsiError('ENOEXEC', `attach ${resolved}: not an object libbpf could open`);
      facts = object.facts;
      this.check(behaviour, hook, resolved, facts, globals, mode);
      this.refuseIfUnenforced(hook);
      await this.kernel.ensurePinDir(behaviour);
      const extra = this.opts.loadOptions?.(behaviour, hook, facts) ?? { globals: {} };
      const load = { globals: { ...globals, ...(mode === 'monitor' ? { [MONITOR_GLOBAL]: '1' } : {}), ...extra.globals }, reuseMaps: extra.reuseMaps };
      const checked = facts;
      const pins = Object.fromEntries(facts.programs.map((p) => [p.name, temporaryPin(p.name)]));
      // an object loads once: a second try (the observer made room) opens the bytes again
      let fresh: OpenedObjectRef | undefined = object;
      programs = await this.observed(
        behaviour, hook,
        async () => {
          const o = fresh ?? (await this.kernel.openObject(data, path.basename(resolved)));
          fresh = undefined;
          try {
            return await this.kernel.loadAndAttach(o, hook, behaviour, { ...load, pins });
          } finally {
            o.close();
          }
        },
        async (e) => roomWithoutObserver(await this.capacity(e, hook, checked)),
      );
    } catch (e) {
      // say which file the writer's path resolved to: it is what was refused
      let err = KrsiError.from(e);
      err.details.object ??= resolved;
      if (err.code === 'E2BIG' && facts) err = await this.capacity(err, hook, facts);
      throw err;
    } finally {
      object?.close();
    }
    await this.pinAll(behaviour, hook, resolved, programs, mode, formatDigest(digestOf(data, globals, mode)));
  }

  /** Throws what the daemon says forbids every attach here (lib/daemon.ts: the bpf LSM inactive). */
  private refuseIfUnenforced(hook: string): void {
    const err = this.opts.attachRefusal?.(hook);
    if (err) throw err;
  }

  /**
   * A program another loader loaded (pinned, by id, the writer's fd): checked
   * here with the kernel's facts (an LSM program loaded for this hook; the
   * addon checks again on the fd it attaches), then attached by a link of our
   * own, pinned as NAME-new at once, and committed like an object's. NAME is
   * the kernel's 15-character name (dots become '_'; prog_ID when it has none
   * or it is not an identifier): a program of the same name on this file is
   * replaced, as for an object.
   */
  private async attachLoaded(behaviour: string, hook: string, { id, source }: LoadedProgramRef, globals: Record<string, string>, mode: Mode): Promise<void> {
    const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object: source, behaviour, hook, progId: id } });
    let prog: AttachedProgram;
    try {
      const keys = Object.keys(globals);
      if (keys.length > 0) {
        throw einval(`attach ${source}: ${keys[0]}=…: a loaded program's globals were set by whoever loaded it; KEY=VALUE is for object files`);
      }
      if (mode === 'monitor') {
        // its krsi_monitor (if it has one) was fixed by whoever loaded it
        throw einval(`attach ${source}: cannot honour mode=monitor: a program another loader loaded refuses as it was ` +
          `loaded to; monitor mode is for object files that include krsi_verdict.h`);
      }
      const facts = await this.kernel.programInfo(id).catch((e: unknown) => {
        const err = KrsiError.from(e);
        throw err.code === 'ENOENT' ? new KrsiError('ENOENT', `attach ${source}: no loaded program has id ${id}`, { details: { object: source, progId: id } }) : err;
      });
      const what = `attach ${source}: program ${id} (${facts.name || 'no name'})`;
      if (facts.type !== 'lsm') {
        throw einval(`${what} is a ${facts.type} program; a behaviour file takes only LSM programs`);
      }
      if (facts.hook !== hook) {
        const there = facts.hook ? this.catalogue.find((b) => b.hook === facts.hook) : undefined;
        throw einval(`${what} was loaded for hook ${facts.hook ?? '?'} but ${behaviour} attaches to ${hook}` +
          (there ? `: write it to ${there.behaviour} instead` : ' (a loaded program\'s hook was fixed when it was loaded)'));
      }
      const name = loadedName(facts.name, id);
      this.refuseIfUnenforced(hook);
      await this.kernel.ensurePinDir(behaviour);
      prog = { ...(await this.observed(behaviour, hook, () => this.kernel.attachProgram(id, hook, behaviour, temporaryPin(name)), async () => true)), name };
    } catch (e) {
      const err = KrsiError.from(e);
      err.details.object ??= source;
      throw err;
    }
    await this.pinAll(behaviour, hook, source, [prog], mode);
  }

  /**
   * Pin the new links as NAME-new, then, once every one is pinned, rename
   * each to NAME-commit: the commit point. Then rename each over its final
   * name: a program of the same name loses its pin in that step, so the hook
   * is never unguarded. A crash before the commit leaves NAME-new pins, which
   * the next daemon removes (nothing of the object stays); after it, the
   * next daemon finishes the renames (all of it goes in): never half an
   * object, across a SIGKILL too. A failed pin detaches everything new. Then
   * the daemon lets go of its fds: the pins hold the programs.
   */
  private async pinAll(behaviour: string, hook: string, object: string, programs: AttachedProgram[], mode: Mode, digest?: string): Promise<void> {
    const pinnedAs = new Map<AttachedProgram, string>();
    const fail = async (e: unknown, what: string) => {
      const rest = programs.filter((p) => !pinnedAs.has(p) || pinnedAs.get(p) !== p.name);
      await this.undo(behaviour, rest, pinnedAs);
      const err = KrsiError.from(e);
      return new KrsiError(err.errno, `pin ${behaviour}: ${err.message}${what}`, {
        details: { ...err.details, object, behaviour, hook },
      });
    };
    try {
      for (const p of programs) {
        if (p.pinned !== undefined) pinnedAs.set(p, p.pinned); // attachProgram pinned it as it attached
        await this.kernel.recordObject(p.linkId, object, mode, digest);
        if (p.pinned !== undefined) continue;
        await this.kernel.pin(p.link, behaviour, temporaryPin(p.name));
        pinnedAs.set(p, temporaryPin(p.name));
      }
      for (const p of programs) {
        await this.kernel.renamePin(behaviour, temporaryPin(p.name), committedPin(p.name));
        pinnedAs.set(p, committedPin(p.name));
      }
    } catch (e) {
      throw await fail(e, '; nothing from the object stays attached');
    }
    for (const p of programs) {
      let old;
      try {
        old = await this.kernel.renamePin(behaviour, committedPin(p.name), p.name);
      } catch (e) {
        // only a broken bpffs fails a rename in one directory: the programs
        // renamed before stay (listed), the others go
        throw await fail(e, '');
      }
      pinnedAs.set(p, p.name);
      this.registry.touch(behaviour);
      this.log.info('attached', { file: behaviour, hook, program: p.name, prog_id: p.progId, link_id: p.linkId, object, mode });
      if (old) {
        await this.kernel.forgetObject(old.pin.linkId);
        this.log.info('replaced', { file: behaviour, program: old.pin.name, prog_id: old.pin.progId, link_id: old.pin.linkId });
        if (!old.released) this.stillHeld(behaviour, old.pin.name, old.pin.linkId);
      }
    }
    for (const p of programs) await p.link.close().catch(() => {});
  }

  /** Detach new links that never made it to their final pin (pinnedAs: the temporary pin each has, if any). */
  private async undo(behaviour: string, programs: AttachedProgram[], pinnedAs: ReadonlyMap<AttachedProgram, string>): Promise<void> {
    for (const p of programs) {
      try {
        const pin = pinnedAs.get(p);
        if (pin !== undefined) {
          await p.link.close();
          await this.kernel.unpin(behaviour, pin);
        } else {
          await p.link.detach();
        }
      } catch (e) {
        this.log.error('detach of a new program failed', { file: behaviour, program: p.name, link_id: p.linkId, error: (e as Error).message });
      }
      await this.kernel.forgetObject(p.linkId).catch(() => {});
    }
  }

  /**
   * E2BIG from an attach: the hook is full. Count what is on it, and measure
   * the kernel's limit: the attach failed at the program with index i of the
   * object (the ones before it were attached, then detached again), so the
   * hook took `on hook now + i` links.
   */
  private async capacity(err: KrsiError, hook: string, facts: ObjectFacts): Promise<KrsiError> {
    // a companion's own function was full: the addon's message names it, the hook's count says nothing
    if (facts.programs.some((p) => p.name === err.details.program && companionOf(p) !== null)) return err;
    const onHook = await this.kernel.linksOnHook(hook).catch(() => null);
    let ours = 0;
    let observers = 0;
    for (const dir of await this.kernel.pinnedBehaviours().catch(() => [] as string[])) {
      const pins = await this.kernel.pins(dir).catch(() => []);
      ours += pins.filter((p) => p.hook === hook).length;
      if (this.hookOf.get(dir) === hook && (await this.kernel.observer(dir).catch(() => null))) observers++;
    }
    // companions run on their own functions: they take none of the hook's slots
    const onThisHook = facts.programs.filter((p) => companionOf(p) === null);
    const failed = typeof err.details.program === 'string' ? onThisHook.findIndex((p) => p.name === err.details.program) : -1;
    const limit = onHook !== null && failed >= 0 ? onHook + failed : MAX_LINKS_PER_HOOK;
    const n = onThisHook.length;
    const msg =
      `${err.message}: hook ${hook} already has ${onHook ?? '?'} programs attached (krsifs: ${ours + observers} of them` +
      (observers ? `, its denial observer included` : '') + ')' +
      (n > 1 ? ` and this object has ${n}` : '') +
      `; the kernel allows ${limit} per hook, shared with fentry/fexit on bpf_lsm_${hook}`;
    return new KrsiError(err.errno, msg, {
      verifierLog: err.verifierLog,
      details: { ...err.details, attachedOnHook: onHook, attachedByKrsifs: ours + observers, observers, limit, objectPrograms: n },
    });
  }

  /** Refuse, before the kernel sees it, an object this file cannot take. */
  private check(
    behaviour: string,
    hook: string,
    object: string,
    facts: ObjectFacts,
    globals: Record<string, string>,
    mode: Mode,
  ): void {
    const einval = (msg: string) => new KrsiError('EINVAL', msg, { details: { object, behaviour, hook } });
    if (facts.programs.length === 0) throw einval(`attach ${object}: the object has no program`);
    const companions = facts.programs.filter((p) => companionOf(p) !== null);
    if (companions.length === facts.programs.length) {
      throw einval(
        `attach ${object}: the object has only fentry/fexit programs (${companions.map((p) => p.name).join(', ')}); ` +
          `companions attach with an LSM program for ${hook} (SEC("lsm")), and this object has none`,
      );
    }
    for (const p of facts.programs) {
      if (companionOf(p) !== null) continue;
      if (!p.isLsm) {
        throw einval(
          `attach ${object}: program ${p.name} is a ${p.type} program (SEC("${p.section}")); ` +
            `a behaviour file takes LSM programs (SEC("lsm"), SEC("lsm.s") or SEC("lsm/${hook}")) and, next to them, ` +
            `fentry/fexit companions (SEC("fentry/FUNC"), SEC("fexit/FUNC"))`,
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
        // only what a line may set
        const have = [...known].filter((g) => !KRSIFS_GLOBALS.includes(g)).join(', ') || 'none';
        throw einval(`attach ${object}: no global named ${key} in the object (it has: ${have})`);
      }
    }
    // attaching it enforcing instead would refuse for real what the writer only meant to watch
    if (mode === 'monitor' && !facts.globals.some((g) => g.name === MONITOR_GLOBAL && g.section.startsWith('.rodata'))) {
      throw einval(`attach ${object}: cannot honour mode=monitor: it does not include krsi_verdict.h (no ${MONITOR_GLOBAL} ` +
        `global); it would refuse for real`);
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
      gone = await this.kernel.unpin(behaviour, name);
    } catch (e) {
      if ((e as KrsiError).code === 'ENOENT') throw notAttached(); // removed meanwhile
      throw e;
    }
    await this.kernel.forgetObject(gone.pin.linkId);
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

/**
 * Would the object fit on the hook without the observer that just took a
 * slot? Known from capacity()'s measure; unknown (a loaded program, one
 * link): try.
 */
function roomWithoutObserver(err: KrsiError): boolean {
  const { attachedOnHook: on, limit, objectPrograms: n } = err.details;
  if (typeof on !== 'number' || typeof limit !== 'number' || typeof n !== 'number') return true;
  return on - 1 + n <= limit;
}

/** The pin name of a loaded program: its kernel name, made a C identifier (bpffs refuses dots). */
export function loadedName(kernelName: string, id: number): string {
  const n = kernelName.replace(/\./g, '_');
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(n) ? n : `prog_${id}`;
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
