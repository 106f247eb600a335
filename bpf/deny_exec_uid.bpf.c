// SPDX-License-Identifier: GPL-2.0
/* deny_exec_uid: refuse (-EPERM) to execute `target` for one user.
 * Event (each refusal): file=PATH action=denied|would-deny error=EPERM uid=N hook=HOOK
 *
 * A second exec policy with its own name, so that two programs can sit on
 * one behaviour file (process_execution, hook bprm_check_security): it denies
 * only when the real uid of the caller is `uid`; uid = 0xffffffff (the
 * default) means every user. Hook-agnostic (SEC("lsm")) like deny_exec, and
 * compares bprm->filename the same way. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"
#include "deny.h"

const volatile char target[KRSI_PATH_MAX] = "";
const volatile __u32 uid = 0xffffffff;

SEC("lsm")
int BPF_PROG(deny_exec_uid, struct linux_binprm *bprm, int ret)
{
	char buf[KRSI_PATH_MAX];
	__u32 caller = (__u32)bpf_get_current_uid_gid();

	if (ret != 0)
		return ret;
	if (target[0] == '\0')
		return 0;
	if (uid != 0xffffffff && caller != uid)
		return 0;
	if (bpf_probe_read_kernel_str(buf, sizeof(buf), BPF_CORE_READ(bprm, filename)) < 0)
		return 0;
	return krsi_path_eq(buf, target) ? krsi_deny("deny_exec_uid", buf) : 0;
}

char LICENSE[] SEC("license") = "GPL";
