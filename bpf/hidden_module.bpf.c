// SPDX-License-Identifier: GPL-2.0
/* hidden_module: report a kernel module that hides itself, as rootkits do in
 * their init function (list_del(&THIS_MODULE->list) hides it from
 * /proc/modules and lsmod; kobject_del(&THIS_MODULE->mkobj.kobj) from
 * /sys/module).
 *
 * No LSM hook runs after a module's init returns (kernel_read_file and
 * kernel_post_read_file come before load_module), and none on its removal:
 * the hiding is seen by a companion, an fexit program on do_init_module
 * (noinline in 6.1 and 6.12), which looks at the module once its init has
 * succeeded. The object's LSM program on module_load allows every load: it
 * is the anchor that ties the companion to the behaviour file.
 *     echo hidden_module.o > /mnt/krsi/module_load
 *
 * It reports, it never refuses: mode=monitor changes nothing.
 *
 * Event (a module hid at load):
 *     module=NAME hidden_from=proc_modules,sysfs   (or only one of the two)
 * pid and comm are the loading task's (insmod, modprobe). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

SEC("lsm")
int BPF_PROG(hidden_module_load, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	return ret;
}

SEC("fexit/do_init_module")
int BPF_PROG(hidden_module_init, struct module *mod, int ret)
{
	static const char both[] = "proc_modules,sysfs", proc[] = "proc_modules", sysfs[] = "sysfs";
	struct list_head *self = &mod->list;
	struct list_head *next, *prev, *next_back = NULL, *prev_fwd = NULL;

	if (ret != 0)
		return 0; /* init failed: the kernel freed the module */
	/* Still in the module list when a neighbour points at it. list_del
	 * leaves LIST_POISON1/2 in next/prev (the reads fault), list_del_init
	 * leaves both == self, an unlink by hand leaves neighbours that skip
	 * it. Both sides are asked: an rmmod of one neighbour meanwhile (one
	 * at a time, under module_mutex) poisons only that side. */
	next = BPF_CORE_READ(mod, list.next);
	prev = BPF_CORE_READ(mod, list.prev);
	if (next && next != self)
		bpf_probe_read_kernel(&next_back, sizeof(next_back), &next->prev);
	if (prev && prev != self)
		bpf_probe_read_kernel(&prev_fwd, sizeof(prev_fwd), &prev->next);
	bool from_proc = next_back != self && prev_fwd != self;
	/* kobject_del removes /sys/module/NAME and with it the kobject's
	 * directory node (sysfs_remove_dir sets sd to NULL) */
	bool from_sysfs = BPF_CORE_READ(mod, mkobj.kobj.sd) == NULL;
	if (!from_proc && !from_sysfs)
		return 0;

	struct krsi_event *e = krsi_event_begin("hidden_module_init");
	if (e) {
		krsi_event_str(e, "module", mod->name);
		krsi_event_str(e, "hidden_from", from_proc && from_sysfs ? both : from_proc ? proc : sysfs);
		krsi_event_submit(e);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
