// SPDX-License-Identifier: GPL-2.0
/* deny_open: refuse (-EPERM) to open the file at `target`.
 *
 * Bound to its hook in the object (SEC("lsm/file_open")): krsifs accepts it
 * only on a file whose hook is file_open, and refuses it elsewhere (EINVAL).
 * The path is the canonical one from bpf_d_path, which the kernel allows on
 * file_open. An empty target denies nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "deny.h"

const volatile char target[KRSI_PATH_MAX] = "";

SEC("lsm/file_open")
int BPF_PROG(deny_open, struct file *file, int ret)
{
	char buf[KRSI_PATH_MAX];

	if (ret != 0)
		return ret;
	if (target[0] == '\0')
		return 0;
	/* f_path is const in newer kernels; the helper only reads it */
	if (bpf_d_path((struct path *)&file->f_path, buf, sizeof(buf)) < 0)
		return 0;
	return krsi_path_eq(buf, target) ? -KRSI_EPERM : 0;
}

char LICENSE[] SEC("license") = "GPL";
