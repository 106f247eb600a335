// Companions: fentry/fexit programs an object carries next to its LSM
// programs, for what no LSM hook sees (a module hiding itself after its
// init). They are loaded, attached, pinned, listed and detached with the
// object's LSM programs, under the same behaviour file; the file's hook is
// still the LSM programs' (an object of companions only is refused). The
// addon applies the same section rule (addon/bpf_common.cc
// CompanionOfSection) on the programs it attaches.

const SECTION = /^(fentry|fexit)\/([A-Za-z_][A-Za-z0-9_]*)$/;
const HOOK = /^(fentry|fexit):/;

/**
 * What a companion runs on, as the listing's HOOK column shows it
 * ('fexit:do_init_module'); null for a program that is no companion: only a
 * tracing program in SEC("fentry/FUNC") or SEC("fexit/FUNC") is one
 * (fmod_ret, fentry.s, iterators and the rest are not).
 */
export function companionOf(p: { type: string; section: string }): string | null {
  const m = p.type === 'tracing' ? SECTION.exec(p.section) : null;
  return m ? `${m[1]}:${m[2]}` : null;
}

/** A link's HOOK that is a companion's target, not an LSM hook. */
export function isCompanionHook(hook: string | null): boolean {
  return hook !== null && HOOK.test(hook);
}
