// SPDX-License-Identifier: GPL-2.0
/* deny_open: refuse (-EPERM) to open the file at `target`.
 * Event (each refusal): file=PATH action=denied|would-deny error=EPERM uid=N hook=HOOK
 *
 * Bound to its hook in the object (SEC("lsm/file_open")): krsifs accepts it
 * only on a file whose hook is file_open, and refuses it elsewhere (EINVAL).
 * The path is the canonical one from bpf_d_path, which the kernel allows on
 * file_open. An empty target denies nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "krsi_verdict.h"
#include "deny.h"

const volatile char target[KRSI_PATH_MAX] = "";

SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file, int ret)
{
	if (ret != 0)
		return ret;
	return krsi_deny_file("deny_open", file, target);
}

char LICENSE[] SEC("license") = "GPL";
