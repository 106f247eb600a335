// SPDX-License-Identifier: GPL-2.0
/* deny_path: refuse (-EPERM) to open the file at `target`, on whatever hook
 * the krsifs file chooses.
 * Event (each refusal): file=PATH action=denied|would-deny error=EPERM uid=N hook=HOOK
 *
 * The hook-agnostic twin of deny_open: plain SEC("lsm"), so the object names
 * no hook and the file it is written to (file_open) supplies it. A plain
 * SEC("lsm") program's arguments must still match the hook it lands on; this
 * one reads a struct file *, so it belongs on file_open (or another hook whose
 * first argument is a struct file * and on which the kernel allows
 * bpf_d_path: the verifier refuses the load elsewhere, it never misbehaves). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "krsi_verdict.h"
#include "deny.h"

const volatile char target[KRSI_PATH_MAX] = "";

SEC("lsm")
int BPF_PROG(deny_path, struct file *file, int ret)
{
	if (ret != 0)
		return ret;
	return krsi_deny_file("deny_path", file, target);
}

char LICENSE[] SEC("license") = "GPL";
