/* SPDX-License-Identifier: GPL-2.0 */
/* krsi_events.h: how a policy reports to krsifs's `events` file.
 *
 *   #include "krsi_events.h"
 *   struct krsi_event *e = krsi_event_begin("my_prog");  // NULL: ring full (counted)
 *   if (e) {
 *       krsi_event_str(e, "file", some_kernel_string);
 *       krsi_event_ustr(e, "value", some_user_string);
 *       krsi_event_u64(e, "ino", ino);
 *       krsi_event_submit(e);
 *   }
 *
 * One ring buffer serves every object: the map below is declared with the
 * fixed name `krsi_events`, and krsifs makes libbpf reuse the daemon's pinned
 * ring (<pin root>/events) instead of creating one per object, so a single
 * reader sees every policy's records in order. `krsi_lost` (also shared)
 * counts records a full ring refused; krsifs reports them as `lost=N`.
 *
 * The payload is the program's choice, as the RFC has it: key/value pairs,
 * each stored as "key\0value\0"; krsifs prints them as key=value (quoting
 * values with spaces). A field that does not fit is left out and the record
 * is marked truncated (printed as `truncated=1`).
 *
 * The program's name is the macro argument (a program cannot cheaply learn
 * its own name); the behaviour is `krsi_behaviour`, which krsifs sets at
 * load to the behaviour file the object was written to. */
#pragma once

#define KRSI_EVENT_PAYLOAD 512
#define KRSI_EVENT_FIELD 256 /* at most this much per key or value */
#define KRSI_EVENT_COMM 16
#define KRSI_EVENT_NAME 32
#define KRSI_EVENT_TRUNCATED 1
/* Sent by krsifs's observer (bpf/krsi_observer.bpf.c), not by a policy: the
 * daemon names the errno and the program that denied. */
#define KRSI_EVENT_OBSERVED 2

/* The record, exactly as krsifs reads it (little-endian, no padding holes). */
struct krsi_event {
	__u64 time_ns;            /* bpf_ktime_get_boot_ns() */
	__u32 pid;                /* thread group id: the pid ps shows */
	__u32 tid;
	__u16 payload_len;        /* bytes of payload used */
	__u16 flags;              /* KRSI_EVENT_TRUNCATED, KRSI_EVENT_OBSERVED */
	__u32 reserved;
	char comm[KRSI_EVENT_COMM];
	char program[KRSI_EVENT_NAME];
	char behaviour[KRSI_EVENT_NAME];
	char payload[KRSI_EVENT_PAYLOAD];
};

/* No padding anywhere: krsifs reads the record by these offsets
 * (lib/core/events.ts RECORD; test/kernel/record-layout.test.ts compares them
 * with this struct's BTF). */
_Static_assert(__builtin_offsetof(struct krsi_event, comm) == 24, "krsi_event: header is 24 bytes");
_Static_assert(sizeof(struct krsi_event) == 104 + KRSI_EVENT_PAYLOAD, "krsi_event: no padding");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* replaced by the daemon's ring */
} krsi_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} krsi_lost SEC(".maps");

/* Set by krsifs at load: the behaviour file this object was written to. */
const volatile char krsi_behaviour[KRSI_EVENT_NAME] = "";

static __always_inline struct krsi_event *krsi_event_begin(const char *program)
{
	struct krsi_event *e = bpf_ringbuf_reserve(&krsi_events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&krsi_lost, &zero);
		if (lost)
			__sync_fetch_and_add(lost, 1);
		return NULL;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->time_ns = bpf_ktime_get_boot_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->payload_len = 0;
	e->flags = 0;
	e->reserved = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->program, sizeof(e->program), program);
	bpf_probe_read_kernel_str(e->behaviour, sizeof(e->behaviour), (const char *)krsi_behaviour);
	return e;
}

/* Where the next field goes, or -1 when it may not fit. The verifier must
 * see off < PAYLOAD - FIELD for a FIELD-sized write at payload + off: the
 * empty asm hides the value from clang so the mask (which the verifier
 * understands) is not optimised away. */
static __always_inline long krsi__room(struct krsi_event *e)
{
	__u64 off = e->payload_len;
	if (off >= KRSI_EVENT_PAYLOAD - KRSI_EVENT_FIELD) {
		e->flags |= KRSI_EVENT_TRUNCATED;
		return -1;
	}
	asm volatile("" : "+r"(off));
	return off & (KRSI_EVENT_PAYLOAD - KRSI_EVENT_FIELD - 1);
}

static __always_inline bool krsi__key(struct krsi_event *e, const char *key)
{
	long off = krsi__room(e);
	if (off < 0)
		return false;
	long n = bpf_probe_read_kernel_str(&e->payload[off], KRSI_EVENT_FIELD, key);
	if (n <= 0)
		return false;
	e->payload_len = off + n;
	return true;
}

/* The value is written only if its key was; a failed value removes the key. */
static __always_inline void krsi__value(struct krsi_event *e, __u32 key_at, long n, long off)
{
	if (n <= 0) {
		e->payload_len = key_at;
		e->flags |= KRSI_EVENT_TRUNCATED;
		return;
	}
	e->payload_len = off + n;
}

/* key=value with value a NUL-terminated string in kernel memory. */
static __always_inline void krsi_event_str(struct krsi_event *e, const char *key, const void *val)
{
	__u32 key_at = e->payload_len;
	if (!krsi__key(e, key))
		return;
	long off = krsi__room(e);
	if (off < 0) {
		e->payload_len = key_at;
		return;
	}
	long n = bpf_probe_read_kernel_str(&e->payload[off], KRSI_EVENT_FIELD, val);
	krsi__value(e, key_at, n, off);
}

/* key=value with value a NUL-terminated string in user memory. */
static __always_inline void krsi_event_ustr(struct krsi_event *e, const char *key, const void *val)
{
	__u32 key_at = e->payload_len;
	if (!krsi__key(e, key))
		return;
	long off = krsi__room(e);
	if (off < 0) {
		e->payload_len = key_at;
		return;
	}
	long n = bpf_probe_read_user_str(&e->payload[off], KRSI_EVENT_FIELD, val);
	krsi__value(e, key_at, n, off);
}

/* key=N in decimal. */
static __always_inline void krsi_event_u64(struct krsi_event *e, const char *key, __u64 val)
{
	static const char fmt[] = "%llu";
	__u32 key_at = e->payload_len;
	if (!krsi__key(e, key))
		return;
	long off = krsi__room(e);
	if (off < 0) {
		e->payload_len = key_at;
		return;
	}
	__u64 args[1] = { val };
	long n = bpf_snprintf(&e->payload[off], 24, fmt, args, sizeof(args));
	krsi__value(e, key_at, n, off);
}

static __always_inline void krsi_event_submit(struct krsi_event *e)
{
	bpf_ringbuf_submit(e, 0);
}
