// SPDX-License-Identifier: GPL-2.0
/* deny_exec: refuse (-EPERM) to execute the file named by `target`.
 * Event (each refusal): file=PATH action=denied|would-deny error=EPERM uid=N hook=HOOK
 *
 * Hook-agnostic on purpose (plain SEC("lsm")): the krsifs file it is written to
 * picks the hook, and it is meant for bprm_check_security
 * (process_execution), whose one argument is a struct linux_binprm *.
 *
 * The comparison is with bprm->filename, the path exactly as handed to
 * execve(2) (a shell passes the path it found in $PATH, e.g. /usr/bin/true).
 * bpf_d_path would give the canonical path, but it is only allowed on some
 * hooks and only for trusted pointers, which bprm->file is not on every
 * kernel; the filename needs nothing but bpf_probe_read_kernel_str.
 * An empty target denies nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"
#include "deny.h"

const volatile char target[KRSI_PATH_MAX] = "";

SEC("lsm")
int BPF_PROG(deny_exec, struct linux_binprm *bprm, int ret)
{
	char buf[KRSI_PATH_MAX];

	/* an earlier program (or LSM) already denied: keep its answer */
	if (ret != 0)
		return ret;
	if (target[0] == '\0')
		return 0;
	if (bpf_probe_read_kernel_str(buf, sizeof(buf), BPF_CORE_READ(bprm, filename)) < 0)
		return 0;
	return krsi_path_eq(buf, target) ? krsi_deny("deny_exec", buf) : 0;
}

char LICENSE[] SEC("license") = "GPL";
