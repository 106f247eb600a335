/* SPDX-License-Identifier: GPL-2.0 */
/* krsi_verdict.h: how a policy refuses, so that krsifs can count, report and
 * switch it to monitor mode.
 *
 *   #include "krsi_verdict.h"
 *   struct krsi_event *e = krsi_event_begin("my_prog");   // NULL: the ring is full
 *   if (!e)
 *       return krsi_refuse(NULL, KRSI_EPERM);             // still counted
 *   krsi_event_str(e, "file", name);                      // the policy's own fields
 *   return krsi_refuse(e, KRSI_EPERM);                    // sends e; -EPERM or 0
 *
 * Test e for NULL once, as above: `if (e) ...; return krsi_refuse(e, ...)`
 * tests it twice, and the 6.1 verifier then follows a path on which the
 * reserved record is never submitted and refuses the program ("Unreleased
 * reference").
 *
 * krsi_refuse appends action=denied (enforce) or action=would-deny (monitor),
 * error=EPERM, uid=N and hook=HOOK to the record, sends it, and counts it in
 * `krsi_stats` (also when the record could not be sent: the ring was full).
 * In enforce mode it returns -err and remembers, for this thread, that the
 * denial is reported, so krsifs's observer (which sees every denial on the
 * hook, whoever caused it) does not report it a second time. In monitor mode
 * it returns 0: the operation goes on.
 *
 * A policy that reports and refuses only when told (a `deny` global) ends
 * with krsi_report(e, deny, KRSI_EPERM) instead, in the same shape: with
 * deny, krsi_refuse; without, action=reported is appended, the record sent,
 * and 0 returned (not counted: nothing was refused).
 *
 * krsifs sets, at load, like krsi_behaviour:
 *   krsi_monitor        1 for `PATH mode=monitor`, 0 otherwise (enforce)
 *   krsi_hook           the LSM hook the object is attached to
 *   krsi_behaviour_id   a 64-bit FNV-1a hash of krsi_behaviour: the key of
 *                       krsi_stats and the mark in krsi_reported
 * and makes the object use its shared krsi_stats and krsi_reported maps, as
 * it does the events ring. An object without `krsi_monitor` cannot honour
 * mode=monitor, and krsifs refuses to attach it in that mode. */
#pragma once

#include "krsi_events.h"

#ifndef KRSI_EPERM
#define KRSI_EPERM 1
#endif
#define KRSI_EACCES 13

const volatile __u32 krsi_monitor = 0;
const volatile char krsi_hook[KRSI_EVENT_NAME] = "";
const volatile __u64 krsi_behaviour_id = 0;

/* Counters of one behaviour, since its first attach (krsifs's `stats` file). */
struct krsi_counts {
	__u64 denied;    /* refused, reported by a policy or by the observer */
	__u64 monitored; /* would have been refused: a policy in monitor mode */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64); /* krsi_behaviour_id */
	__type(value, struct krsi_counts);
} krsi_stats SEC(".maps");

/* Denials a policy reported itself, by thread (pid_tgid): the value is the
 * behaviour's id. The observer on the same hook runs right after the policy
 * in the same thread, takes the mark and stays silent. LRU: a mark nobody
 * takes (no observer on that hook) ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} krsi_reported SEC(".maps");

static __always_inline void krsi_count(bool monitored)
{
	__u64 key = krsi_behaviour_id;
	struct krsi_counts *c = bpf_map_lookup_elem(&krsi_stats, &key);

	if (!c) {
		struct krsi_counts zero = {};
		bpf_map_update_elem(&krsi_stats, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&krsi_stats, &key);
		if (!c)
			return;
	}
	if (monitored)
		__sync_fetch_and_add(&c->monitored, 1);
	else
		__sync_fetch_and_add(&c->denied, 1);
}

/* The errno's name, for the records (the policies refuse with these two). */
static __always_inline const char *krsi_errno_name(int err)
{
	static const char eperm[] = "EPERM", eacces[] = "EACCES", other[] = "EOTHER";

	if (err == KRSI_EPERM)
		return eperm;
	if (err == KRSI_EACCES)
		return eacces;
	return other;
}

/* The verdict of a policy that would refuse with -err (err > 0): see above. */
static __always_inline int krsi_refuse(struct krsi_event *e, int err)
{
	static const char denied[] = "denied", would[] = "would-deny";
	bool monitor = krsi_monitor != 0;

	krsi_count(monitor);
	if (!monitor) {
		__u64 tid = bpf_get_current_pid_tgid();
		__u64 id = krsi_behaviour_id;
		bpf_map_update_elem(&krsi_reported, &tid, &id, BPF_ANY);
	}
	if (e) {
		krsi_event_str(e, "action", monitor ? would : denied);
		krsi_event_str(e, "error", krsi_errno_name(err));
		krsi_event_u64(e, "uid", (__u32)bpf_get_current_uid_gid());
		krsi_event_str(e, "hook", (const char *)krsi_hook);
		krsi_event_submit(e);
	}
	return monitor ? 0 : -err;
}

/* The verdict of a policy that reports, and refuses with -err only when
 * refuse is set (its `deny` global): see above. Test e for NULL once, as for
 * krsi_refuse. */
static __always_inline int krsi_report(struct krsi_event *e, bool refuse, int err)
{
	static const char reported[] = "reported";

	if (refuse)
		return krsi_refuse(e, err);
	if (e) {
		krsi_event_str(e, "action", reported);
		krsi_event_submit(e);
	}
	return 0;
}
