// SPDX-License-Identifier: GPL-2.0
/* module_deny_blob: refuse (EPERM) modules loaded from memory with
 * init_module(2): they carry no file name that module_allowlist could check.
 * Other kernel_load_data users (firmware, kexec, policy) are untouched.
 *
 *     echo module_deny_blob.o > /mnt/krsi/module_load_data
 *
 * Globals: none.  Event: what=init_module action=denied|would-deny error=EPERM uid=N hook=HOOK */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "krsi_verdict.h"

SEC("lsm")
int BPF_PROG(module_deny_blob, enum kernel_load_data_id id, bool contents, int ret)
{
	if (ret != 0)
		return ret;
	if (id != LOADING_MODULE)
		return 0;
	/* one NULL test of the record: see krsi_deny in deny.h */
	struct krsi_event *e = krsi_event_begin("module_deny_blob");
	if (!e)
		return krsi_refuse(NULL, KRSI_EPERM);
	krsi_event_str(e, "what", "init_module");
	return krsi_refuse(e, KRSI_EPERM);
}

char LICENSE[] SEC("license") = "GPL";
