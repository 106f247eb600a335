// SPDX-License-Identifier: GPL-2.0
/* exec_self_delete: signal a process that deletes its own executable (a
 * common trick of malware that wants to leave nothing on disk): the unlinked
 * inode is the inode of current->mm->exe_file.
 *
 * Write it to file_deletion (path_unlink, or inode_unlink where the kernel
 * lacks the path hooks: both have the dentry as second argument):
 *     echo exec_self_delete.o > /mnt/krsi/file_deletion
 *     echo exec_self_delete.o deny=1 > /mnt/krsi/file_deletion
 *
 * Globals:
 *   deny  0 (default): report only; 1: also refuse the unlink with EPERM
 *
 * Event: file=NAME ino=N action=reported (deny=0), or with deny=1
 * file=NAME ino=N action=denied|would-deny error=EPERM uid=N hook=HOOK
 * (NAME: the unlinked link's last component) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

const volatile __u32 deny = 0;

SEC("lsm")
int BPF_PROG(exec_self_delete, void *dir, struct dentry *dentry, int ret)
{
	if (ret != 0)
		return ret;
	struct task_struct *task = bpf_get_current_task_btf();
	struct inode *exe = BPF_CORE_READ(task, mm, exe_file, f_inode);
	struct inode *victim = BPF_CORE_READ(dentry, d_inode);
	if (!exe || exe != victim)
		return 0;

	/* one NULL test of the record: see krsi_verdict.h */
	struct krsi_event *e = krsi_event_begin("exec_self_delete");
	if (!e)
		return krsi_report(NULL, deny, KRSI_EPERM);
	krsi_event_str(e, "file", BPF_CORE_READ(dentry, d_name.name));
	krsi_event_u64(e, "ino", BPF_CORE_READ(victim, i_ino));
	return krsi_report(e, deny, KRSI_EPERM);
}

char LICENSE[] SEC("license") = "GPL";
