// SPDX-License-Identifier: GPL-2.0
/* exec_log: every execution, logged: the signal stream a Falco-style
 * consumer reads. One record per exec that succeeded; refuses nothing.
 *
 * Write it to process_execution_committed (bprm_committed_creds):
 *     echo exec_log.o > /mnt/krsi/process_execution_committed
 *
 * Why that hook and not process_execution (bprm_check_security): there the
 * arguments sit in an mm that is not yet current's, so no helper can read
 * them, and the exec may still fail; once it has committed, current->mm is
 * the new one and bprm->p points at its argument strings (as in audit_env).
 * An exec that fails before committing (ENOENT, EACCES, a refusal on
 * process_execution) is not logged.
 *
 * Globals: none.
 *
 * Event: uid=N ppid=N argc=N argv0=A argv1=A argv2=A argv3=A
 *        [args_truncated=1] file=PATH
 *   uid     the real uid (a set-uid program shows who ran it)
 *   ppid    the real parent's thread group id (the pid ps shows)
 *   argc    the new program's argument count; argv0..argv3 its first four
 *           arguments (fewer when argc < 4), each cut at ARG_SHOW bytes
 *   args_truncated=1  when an argument was cut, or argc > 4, or an argument
 *           was unreadable (then the rest is left out)
 *   file    bprm->filename: the path given to execve (for a script, the
 *           script; the arguments are then its interpreter's: sh, the script)
 * Why this order: a field of a record starts within its first 256 bytes
 * (krsi_events.h), so the bounded fields come first and the path, up to 255
 * bytes, always fits after them: 40-byte arguments leave it room. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

#define ARGS_SHOWN 4
#define ARG_SHOW 40
#define STR_MAX 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[STR_MAX]);
} exec_log_buf SEC(".maps");

SEC("lsm")
int BPF_PROG(exec_log, struct linux_binprm *bprm)
{
	static const char keys[ARGS_SHOWN][6] = { "argv0", "argv1", "argv2", "argv3" };
	static const char one[] = "1";
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0;
	char *buf = bpf_map_lookup_elem(&exec_log_buf, &zero);

	if (!buf)
		return 0;
	struct krsi_event *e = krsi_event_begin("exec_log");
	if (!e)
		return 0;
	int argc = BPF_CORE_READ(bprm, argc);
	unsigned long p = BPF_CORE_READ(bprm, p);
	bool cut = argc > ARGS_SHOWN;

	krsi_event_u64(e, "uid", (__u32)bpf_get_current_uid_gid());
	krsi_event_u64(e, "ppid", BPF_CORE_READ(task, real_parent, tgid));
	krsi_event_u64(e, "argc", argc);
	for (int i = 0; i < ARGS_SHOWN && i < argc; i++) {
		/* the whole string, to find where the next one starts */
		long n = bpf_probe_read_user_str(buf, STR_MAX, (const void *)p);
		if (n <= 0 || n >= STR_MAX) {
			cut = true; /* unreadable, or too long to skip over exactly */
			break;
		}
		p += n;
		if (n - 1 > ARG_SHOW) {
			buf[ARG_SHOW] = '\0';
			cut = true;
		}
		krsi_event_str(e, keys[i], buf);
	}
	if (cut)
		krsi_event_str(e, "args_truncated", one);
	krsi_event_str(e, "file", BPF_CORE_READ(bprm, filename));
	krsi_event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
