// SPDX-License-Identifier: GPL-2.0
/* audit_env: the RFC's own sample. Report every execution whose environment
 * sets the variable `var` (default LD_PRELOAD), with its value. Denies
 * nothing.
 *
 * Write it to process_execution_committed (bprm_committed_creds):
 *     echo audit_env.o > /mnt/krsi/process_execution_committed
 *     echo audit_env.o var=LD_AUDIT > /mnt/krsi/process_execution_committed
 *
 * Why that hook: at bprm_check_security the new program's arguments and
 * environment sit in an mm that is not yet current's, so no helper can read
 * them; once the exec has committed (bprm_committed_creds), current->mm is the
 * new one and bprm->p points at its strings (argv then envp, NUL-separated).
 *
 * Globals:
 *   var   the variable's name (at most 63 bytes); empty reports nothing
 *
 * Event (one per matching exec): var=NAME value=VALUE file=PATH
 * Limits: looks at the first 256 strings (argv + envp); stops at a string
 * longer than 4095 bytes; a value is cut at 255 bytes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h" /* refuses nothing: included so that mode=monitor is accepted */

#define VAR_MAX 64
#define STR_MAX 4096

const volatile char var[VAR_MAX] = "LD_PRELOAD";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[STR_MAX]);
} audit_env_buf SEC(".maps");

struct scan {
	unsigned long p;
	int argc;
	int total;
	char *buf;
	int found; /* offset of the value in buf, 0 when not found */
};

/* "NAME=..." with NAME == var: the offset of the value, else 0. */
static __always_inline int value_at(const char *buf)
{
	for (int j = 0; j < VAR_MAX - 1; j++) {
		if (var[j] == '\0')
			return buf[j] == '=' ? j + 1 : 0;
		if (buf[j] != var[j])
			return 0;
	}
	return 0;
}

static long scan_one(__u32 i, void *ctx)
{
	struct scan *s = ctx;

	if ((int)i >= s->total)
		return 1;
	long n = bpf_probe_read_user_str(s->buf, STR_MAX, (const void *)s->p);
	if (n <= 0 || n >= STR_MAX)
		return 1; /* unreadable, or too long to skip over exactly */
	if ((int)i >= s->argc) {
		int at = value_at(s->buf);
		if (at) {
			s->found = at;
			return 1;
		}
	}
	s->p += n;
	return 0;
}

SEC("lsm")
int BPF_PROG(audit_env, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct scan s = {};

	if (var[0] == '\0')
		return 0;
	s.buf = bpf_map_lookup_elem(&audit_env_buf, &zero);
	if (!s.buf)
		return 0;
	s.p = BPF_CORE_READ(bprm, p);
	s.argc = BPF_CORE_READ(bprm, argc);
	s.total = s.argc + BPF_CORE_READ(bprm, envc);
	bpf_loop(256, scan_one, &s, 0);
	if (!s.found)
		return 0;

	struct krsi_event *e = krsi_event_begin("audit_env");
	if (!e)
		return 0;
	krsi_event_str(e, "var", (const char *)var);
	krsi_event_str(e, "value", s.buf + (s.found & (VAR_MAX - 1)));
	krsi_event_str(e, "file", BPF_CORE_READ(bprm, filename));
	krsi_event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
