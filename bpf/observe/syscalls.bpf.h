/* The socket syscalls Vigil looks at, and what it does at their entry and exit:
 * one table for every program that sees them (observe.bpf.c: one syscalls/
 * tracepoint per call and direction). A tp_btf sys_enter/sys_exit dispatch by
 * number was measured and not taken: it runs on every syscall of the host and
 * cost more than it saved (bench/results/issue28-syscall-dispatch.md). */
#ifndef VIGIL_OBSERVE_SYSCALLS_BPF_H
#define VIGIL_OBSERVE_SYSCALLS_BPF_H

#include "observe/io.bpf.h"

/* Names of the calls, valued as x86_64's numbers (syscall_64.tbl); each
 * program passes its own as a constant, so the switches below fold away. */
enum vigil_sys {
	VIGIL_SYS_READ = 0,
	VIGIL_SYS_WRITE = 1,
	VIGIL_SYS_CLOSE = 3,
	VIGIL_SYS_READV = 19,
	VIGIL_SYS_WRITEV = 20,
	VIGIL_SYS_SENDFILE64 = 40,
	VIGIL_SYS_CONNECT = 42,
	VIGIL_SYS_ACCEPT = 43,
	VIGIL_SYS_SENDTO = 44,
	VIGIL_SYS_RECVFROM = 45,
	VIGIL_SYS_SENDMSG = 46,
	VIGIL_SYS_RECVMSG = 47,
	VIGIL_SYS_ACCEPT4 = 288,
	VIGIL_SYS_RECVMMSG = 299,
	VIGIL_SYS_SENDMMSG = 307,
};

static __always_inline void sys__enter_connect(__s32 fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if ((pid_tgid >> 32) == self_pid)
		return;
	bpf_map_update_elem(&pending_connect, &pid_tgid, &fd, BPF_ANY);
}

static __always_inline void sys__exit_connect(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__s32 *fd = bpf_map_lookup_elem(&pending_connect, &pid_tgid);
	__s32 saved;

	if (!fd)
		return;
	saved = *fd;
	bpf_map_delete_elem(&pending_connect, &pid_tgid);
	/* Non-blocking connects report EINPROGRESS; the tuple is already bound. */
	if (ret != 0 && ret != -EINPROGRESS)
		return;
	conn__track(saved, VIGIL_ROLE_CLIENT);
}

/* Entry of syscall `nr` with its first argument: only connect (its fd, for
 * the exit) and close (the fd is gone by the exit) are looked at here. */
static __always_inline void sys__enter(long nr, __u64 a0)
{
	switch (nr) {
	case VIGIL_SYS_CONNECT:
		sys__enter_connect((__s32)a0);
		return;
	case VIGIL_SYS_CLOSE:
		conn__closed((__s32)a0);
		return;
	default:
		return;
	}
}

/* Exit of a payload call: its arguments are read from the task's saved user
 * registers (rdi, rsi, rdx, r10 on x86_64), which these calls leave as they
 * were. The per-syscall tracepoints do not fire for 32-bit (compat) calls
 * (ARCH_TRACE_IGNORE_COMPAT_SYSCALLS), so the registers are always the 64-bit
 * convention's. MSG_PEEK reads bytes that the next read returns again: not
 * stream progress. */
static __always_inline void sys__payload_exit(long nr, long ret)
{
	struct pt_regs *regs;
	__u64 a0, a1, a2, a3;

	if (capture_bytes == 0)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	a0 = regs->di;
	a1 = regs->si;
	a2 = regs->dx;
	switch (nr) {
	case VIGIL_SYS_WRITE:
	case VIGIL_SYS_SENDTO:
		io__done((__s32)a0, a1, a2, VIGIL_DIR_EGRESS, IO_FLAT, ret);
		return;
	case VIGIL_SYS_WRITEV:
		io__done((__s32)a0, a1, a2, VIGIL_DIR_EGRESS, IO_IOV, ret);
		return;
	case VIGIL_SYS_SENDMSG:
		io__done((__s32)a0, a1, 0, VIGIL_DIR_EGRESS, IO_MSGHDR, ret);
		return;
	case VIGIL_SYS_SENDMMSG:
		io__done((__s32)a0, a1, (__u32)a2, VIGIL_DIR_EGRESS, IO_MMSG, ret);
		return;
	case VIGIL_SYS_SENDFILE64: /* out_fd */
		io__done((__s32)a0, 0, 0, VIGIL_DIR_EGRESS, IO_NONE, ret);
		return;
	case VIGIL_SYS_READ:
		io__done((__s32)a0, a1, a2, VIGIL_DIR_INGRESS, IO_FLAT, ret);
		return;
	case VIGIL_SYS_READV:
		io__done((__s32)a0, a1, a2, VIGIL_DIR_INGRESS, IO_IOV, ret);
		return;
	case VIGIL_SYS_RECVFROM:
		a3 = regs->r10;
		if (a3 & MSG_PEEK)
			return;
		io__done((__s32)a0, a1, a2, VIGIL_DIR_INGRESS, IO_FLAT, ret);
		return;
	case VIGIL_SYS_RECVMSG:
		if (a2 & MSG_PEEK)
			return;
		io__done((__s32)a0, a1, 0, VIGIL_DIR_INGRESS, IO_MSGHDR, ret);
		return;
	case VIGIL_SYS_RECVMMSG:
		a3 = regs->r10;
		if (a3 & MSG_PEEK)
			return;
		io__done((__s32)a0, a1, (__u32)a2, VIGIL_DIR_INGRESS, IO_MMSG, ret);
		return;
	default:
		return;
	}
}

static __always_inline void sys__exit(long nr, long ret)
{
	switch (nr) {
	case VIGIL_SYS_CONNECT:
		sys__exit_connect(ret);
		return;
	case VIGIL_SYS_ACCEPT:
	case VIGIL_SYS_ACCEPT4:
		conn__accepted(ret);
		return;
	default:
		sys__payload_exit(nr, ret);
		return;
	}
}

#endif
