// SPDX-License-Identifier: GPL-2.0
/* module_allowlist: kernel modules load only when their name is allowed;
 * every other module load is refused with EPERM (and reported).
 *
 * Two objects, because module loading has two doors:
 *   finit_module(2) (modprobe, insmod) reads a file: kernel_read_file with
 *   READING_MODULE. The name is the file's, up to its first '.'
 *   (dummy.ko -> dummy; '-' and '_' are the same, as for modprobe).
 *       echo "module_allowlist.o allow=fuse,dummy" > /mnt/krsi/module_load
 *   init_module(2) hands the kernel a blob with no file name (busybox insmod
 *   falls back to it when finit_module fails): kernel_load_data with
 *   LOADING_MODULE; module_deny_blob.o refuses those outright.
 *       echo module_deny_blob.o > /mnt/krsi/module_load_data
 *
 * Globals:
 *   allow  comma-separated module names (at most 255 bytes); empty allows none
 *
 * Event (every module file load): module=NAME action=allowed, or on a
 * refusal module=NAME action=denied|would-deny error=EPERM uid=N hook=HOOK */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"
#include "policy.h"

const volatile char allow[KRSI_LIST_MAX] = "";

SEC("lsm")
int BPF_PROG(module_allowlist, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	static const char allowed[] = "allowed";
	char name[64] = {};

	if (ret != 0)
		return ret;
	if (id != READING_MODULE || !file)
		return 0;
	/* unreadable: an empty name, which no list allows: refused */
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(file, f_path.dentry, d_name.name)) <= 0)
		name[0] = '\0';
	int len = 0;
	for (; len < (int)sizeof(name) - 1; len++)
		if (name[len] == '.' || name[len] == '\0')
			break;
	name[len & 63] = '\0';
	bool ok = krsi_in_list(name, len, allow, false, true);

	/* one NULL test of the record: see krsi_deny in deny.h */
	struct krsi_event *e = krsi_event_begin("module_allowlist");
	if (!e)
		return ok ? 0 : krsi_refuse(NULL, KRSI_EPERM);
	krsi_event_str(e, "module", name);
	if (!ok)
		return krsi_refuse(e, KRSI_EPERM);
	krsi_event_str(e, "action", allowed);
	krsi_event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
