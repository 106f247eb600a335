// SPDX-License-Identifier: GPL-2.0
/* mem_write: writes into another process's memory. Report, and with deny=1
 * refuse (EPERM), a process that
 *   - attaches to another with ptrace(2) (PTRACE_ATTACH, PTRACE_SEIZE),
 *   - opens another process's /proc/PID/mem for writing (O_WRONLY, O_RDWR),
 *   - calls process_vm_writev(2) on another process.
 *
 * Write it to process_trace (ptrace_access_check):
 *     echo mem_write.o > /mnt/krsi/process_trace          # report
 *     echo mem_write.o deny=1 > /mnt/krsi/process_trace   # report and refuse
 *
 * Why the syscall: the hook says who is checked and with which mode, not
 * what for. ptrace attach, /proc/PID/mem (read-only opens too) and
 * process_vm_readv and _writev all ask PTRACE_MODE_ATTACH; /proc/PID/environ,
 * auxv, maps ask PTRACE_MODE_READ. So the program looks at the syscall the
 * caller is in (bpf_task_pt_regs(current): orig_ax, and for the open calls
 * their flags argument; LSM programs may call it from 5.15, so on 6.1 and
 * 6.12): ptrace with ATTACH is an attach or a seize (the other requests do
 * not reach this hook); open, openat, openat2 or creat with ATTACH is an
 * open of /proc/PID/mem (the only ATTACH check made while opening), a write
 * when its access mode is not O_RDONLY; process_vm_writev is a write,
 * process_vm_readv is not. Nothing else is reported or refused.
 *
 * Limits: x86 only (syscall numbers). 32-bit callers are told apart by
 * TS_COMPAT and use the i386 numbers, x32 callers by their syscall bit:
 * neither is proven in the VM suite (no 32-bit or x32 toolchain there).
 * A /proc/PID/mem opened through io_uring, or opened before the policy was
 * attached (or handed over by another process), is not seen: the check is
 * made at open, not at each write. A tracer attached before is not seen
 * either. pidfd_getfd(2), perf_event_open(2) and kcmp(2)
 * reach the hook too and are left alone. The same thread group never reaches
 * it (the kernel allows that before asking the LSMs).
 *
 * What the caller sees when refused: EPERM from ptrace(2) and
 * process_vm_writev(2); EACCES from the open of /proc/PID/mem, because the
 * kernel turns any refused check there into EACCES (mm_access).
 *
 * Globals:
 *   deny  0 (default): report only; 1: also refuse with EPERM (through
 *         krsi_report: counted, and mode=monitor reports would-deny)
 *
 * Event: target=PID target_comm=COMM how=ptrace|mem|vm_writev, then
 * action=reported, or (deny=1) action=denied error=EPERM uid=N hook=HOOK.
 * PID is the target's thread group id (the pid ps shows). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "krsi_verdict.h"

#define PTRACE_MODE_ATTACH 0x02
#define O_ACCMODE 3
#define TS_COMPAT 0x0002 /* x86: thread_info.status in an ia32 syscall */

/* x86-64 (native) and i386 (compat) syscall numbers. */
#define NR64_OPEN 2
#define NR64_CREAT 85
#define NR64_PTRACE 101
#define NR64_OPENAT 257
#define NR64_PROCESS_VM_WRITEV 311
#define NR32_OPEN 5
#define NR32_CREAT 8
#define NR32_PTRACE 26
#define NR32_OPENAT 295
#define NR32_PROCESS_VM_WRITEV 348
#define NR_OPENAT2 437 /* the same in both tables */
/* x32 callers (where the kernel allows them): the x86-64 numbers with this
 * bit, except for the calls with x32 entries of their own */
#define X32_SYSCALL_BIT 0x40000000
#define NRX32_PTRACE 521
#define NRX32_PROCESS_VM_WRITEV 540

const volatile __u32 deny = 0;

enum how { HOW_NONE, HOW_PTRACE, HOW_MEM, HOW_VM_WRITEV };

/* The open calls' flags argument; openat2 passes a struct open_how, whose
 * first member is the flags (the kernel has copied it already: the page is
 * there). -1 when unreadable: counted as a write, the cautious side. */
static __always_inline __u64 open_flags(unsigned long arg)
{
	__u64 flags;

	if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)arg))
		return (__u64)-1;
	return flags;
}

static __always_inline enum how classify(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	bool compat = BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u64 flags;

	/* i386 passes bx, cx, dx, si, ...; x86-64 di, si, dx, r10, ... */
	if (compat) {
		if (nr == NR32_PTRACE)
			return HOW_PTRACE;
		if (nr == NR32_PROCESS_VM_WRITEV)
			return HOW_VM_WRITEV;
		if (nr == NR32_OPEN)
			flags = BPF_CORE_READ(regs, cx);
		else if (nr == NR32_OPENAT)
			flags = BPF_CORE_READ(regs, dx);
		else if (nr == NR_OPENAT2)
			flags = open_flags((__u32)BPF_CORE_READ(regs, dx));
		else if (nr == NR32_CREAT)
			flags = 1; /* O_WRONLY */
		else
			return HOW_NONE;
	} else {
		if (nr & X32_SYSCALL_BIT) {
			nr &= ~X32_SYSCALL_BIT;
			if (nr == NRX32_PTRACE)
				return HOW_PTRACE;
			if (nr == NRX32_PROCESS_VM_WRITEV)
				return HOW_VM_WRITEV;
		}
		if (nr == NR64_PTRACE)
			return HOW_PTRACE;
		if (nr == NR64_PROCESS_VM_WRITEV)
			return HOW_VM_WRITEV;
		if (nr == NR64_OPEN)
			flags = BPF_CORE_READ(regs, si);
		else if (nr == NR64_OPENAT)
			flags = BPF_CORE_READ(regs, dx);
		else if (nr == NR_OPENAT2)
			flags = open_flags(BPF_CORE_READ(regs, dx));
		else if (nr == NR64_CREAT)
			flags = 1; /* O_WRONLY */
		else
			return HOW_NONE;
	}
	return (flags & O_ACCMODE) ? HOW_MEM : HOW_NONE;
}

SEC("lsm")
int BPF_PROG(mem_write, struct task_struct *child, unsigned int mode, int ret)
{
	static const char ptrace[] = "ptrace", mem[] = "mem", vm_writev[] = "vm_writev";

	if (ret != 0)
		return ret;
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	enum how how = classify(bpf_get_current_task_btf());
	if (how == HOW_NONE)
		return 0;

	/* one NULL test of the record: see krsi_verdict.h */
	struct krsi_event *e = krsi_event_begin("mem_write");
	if (!e)
		return krsi_report(NULL, deny, KRSI_EPERM);

	char comm[KRSI_EVENT_COMM];
	BPF_CORE_READ_STR_INTO(&comm, child, comm);
	krsi_event_u64(e, "target", BPF_CORE_READ(child, tgid));
	krsi_event_str(e, "target_comm", comm);
	krsi_event_str(e, "how", how == HOW_PTRACE ? ptrace : how == HOW_MEM ? mem : vm_writev);
	return krsi_report(e, deny, KRSI_EPERM);
}

char LICENSE[] SEC("license") = "GPL";
