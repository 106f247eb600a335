// SPDX-License-Identifier: GPL-2.0
/* krsi_observer: krsifs's own witness of a behaviour's verdicts. One fexit
 * program on bpf_lsm_<hook> (the daemon sets the target at load): it runs
 * after every LSM program on the hook, sees the verdict they produced, and
 * reports each denial, whoever caused it: a foreign object that reports
 * nothing is seen too.
 *
 * A denial a krsifs policy already reported (krsi_refuse marked this thread
 * with the behaviour's id in krsi_reported) is only unmarked: the policy
 * counted and reported it. Any other is counted in krsi_stats (before the
 * record is reserved, so a full ring still counts) and sent with the flag
 * KRSI_EVENT_OBSERVED: the daemon names the errno and the program.
 *
 * What the hook is about comes from the hook's arguments, read with
 * bpf_get_func_arg since one program serves every hook; krsi_subject says how
 * to read them (lib/core/observer.ts holds the table). bpf_d_path is not
 * allowed here (fexit on bpf_lsm_* is not in its allow list), so a file's
 * path is walked by hand, dentry by dentry and across mounts, as d_path does
 * (but up to the global root, not the task's chroot), one level per
 * bpf_loop step. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

/* krsi_subject: what the hook's arguments name (lib/core/observer.ts). */
#define KRSI_SUBJECT_NONE 0
#define KRSI_SUBJECT_BPRM 1   /* arg 0: struct linux_binprm *: file=filename */
#define KRSI_SUBJECT_FILE 2   /* arg 0: struct file * (may be NULL): file=full path */
#define KRSI_SUBJECT_DENTRY 3 /* arg 1: struct dentry *: file=its name */
#define KRSI_SUBJECT_TASK 4   /* arg 0: struct task_struct *: target=its pid */

const volatile __u32 krsi_subject = KRSI_SUBJECT_NONE;

/* The path is built from the end of the first half of the buffer towards its
 * start; the second half is slack so that every masked write stays inside. */
#define PATH_HALF 4096
#define PATH_MASK (PATH_HALF - 1)
#define NAME_MASK 255
#define PATH_DEPTH 64 /* components walked, mount crossings included */

struct path_buf {
	char b[2 * PATH_HALF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} krsi_path_scratch SEC(".maps");

/* One step of the walk from a dentry up to the global root: bpf_loop runs
 * it, so the verifier checks it once instead of once per level (a plain
 * loop over 64 levels with a branch in each is too big for it). The kernel
 * pointers are plain numbers here, read through bpf_probe_read_kernel. */
struct walk {
	struct dentry *d;
	struct mount *mnt;
	struct dentry *mnt_root;
	__u32 off; /* where the path starts in the buffer */
};

static long walk_step(__u32 i, struct walk *w)
{
	__u32 zero = 0;
	struct path_buf *buf = bpf_map_lookup_elem(&krsi_path_scratch, &zero);
	/* locals: BPF_CORE_READ on w->... would relocate struct walk itself */
	struct dentry *d = w->d;
	struct mount *mnt = w->mnt;
	struct dentry *mnt_root = w->mnt_root;
	struct dentry *parent;
	__u32 off = w->off;

	if (!buf)
		return 1;
	parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (d != mnt_root || mnt == up)
			return 1; /* the global root (or a detached tree) */
		/* the root of a mount: go on from where it is mounted */
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->mnt_root = BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	}
	__u32 len = BPF_CORE_READ(d, d_name.len) & NAME_MASK;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);

	if (len + 1 > off)
		return 1; /* no room: the head is lost */
	off -= len;
	/* keep the mask the verifier needs: clang may think it useless */
	asm volatile("" : "+r"(off));
	bpf_probe_read_kernel(&buf->b[off & PATH_MASK], len, name);
	off--;
	asm volatile("" : "+r"(off));
	buf->b[off & PATH_MASK] = '/';
	w->off = off;
	w->d = parent;
	return 0;
}

/* The full path of `f` in buf (NUL-terminated), or NULL. A path deeper than
 * PATH_DEPTH keeps its last components and loses its head. */
static __always_inline const char *file_path(struct file *f, struct path_buf *buf)
{
	struct vfsmount *vfsmnt = BPF_CORE_READ(f, f_path.mnt);
	struct walk w = {
		.d = BPF_CORE_READ(f, f_path.dentry),
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.mnt_root = BPF_CORE_READ(vfsmnt, mnt_root),
		.off = PATH_HALF - 1,
	};
	__u32 off;

	if (!w.d || !vfsmnt)
		return NULL;
	buf->b[PATH_HALF - 1] = '\0';
	bpf_loop(PATH_DEPTH, walk_step, &w, 0);
	off = w.off;
	if (off == PATH_HALF - 1) {
		/* the root itself */
		off--;
		buf->b[off & PATH_MASK] = '/';
	}
	asm volatile("" : "+r"(off));
	return &buf->b[off & PATH_MASK];
}

static __always_inline void subject(struct krsi_event *e, __u64 *ctx)
{
	static const char file_key[] = "file", target_key[] = "target";
	__u64 arg = 0;
	__u32 zero = 0;

	switch (krsi_subject) {
	case KRSI_SUBJECT_BPRM: {
		struct linux_binprm *bprm;

		if (bpf_get_func_arg(ctx, 0, &arg) || !arg)
			return;
		bprm = (struct linux_binprm *)arg;
		krsi_event_str(e, file_key, BPF_CORE_READ(bprm, filename));
		return;
	}
	case KRSI_SUBJECT_FILE: {
		struct path_buf *buf = bpf_map_lookup_elem(&krsi_path_scratch, &zero);
		const char *p;

		if (!buf || bpf_get_func_arg(ctx, 0, &arg) || !arg)
			return;
		p = file_path((struct file *)arg, buf);
		if (p)
			krsi_event_str(e, file_key, p);
		return;
	}
	case KRSI_SUBJECT_DENTRY: {
		if (bpf_get_func_arg(ctx, 1, &arg) || !arg)
			return;
		krsi_event_str(e, file_key, BPF_CORE_READ((struct dentry *)arg, d_name.name));
		return;
	}
	case KRSI_SUBJECT_TASK: {
		if (bpf_get_func_arg(ctx, 0, &arg) || !arg)
			return;
		krsi_event_u64(e, target_key, (__u32)BPF_CORE_READ((struct task_struct *)arg, tgid));
		return;
	}
	}
}

SEC("fexit")
int krsi_observer(__u64 *ctx)
{
	static const char denied[] = "denied";
	__u64 ret = 0;
	__u64 tid, *mark;
	struct krsi_event *e;
	int err;

	if (bpf_get_func_ret(ctx, &ret) || (int)ret == 0)
		return 0;
	tid = bpf_get_current_pid_tgid();
	mark = bpf_map_lookup_elem(&krsi_reported, &tid);
	if (mark) {
		bool ours = *mark == krsi_behaviour_id;

		/* a mark left on another hook is stale whatever its id */
		bpf_map_delete_elem(&krsi_reported, &tid);
		if (ours)
			return 0;
	}
	krsi_count(false);
	e = krsi_event_begin("");
	if (!e)
		return 0;
	e->flags |= KRSI_EVENT_OBSERVED;
	err = -(int)ret;
	krsi_event_str(e, "action", denied);
	krsi_event_u64(e, "error", err > 0 ? err : (__u32)(int)ret);
	krsi_event_u64(e, "uid", (__u32)bpf_get_current_uid_gid());
	krsi_event_str(e, "hook", (const char *)krsi_hook);
	subject(e, ctx);
	krsi_event_submit(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
