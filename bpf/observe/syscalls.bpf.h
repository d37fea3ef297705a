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

/* Entry of syscall `nr` with its first four arguments. Payload calls work out
 * their buffer here and reach io__enter once. */
static __always_inline void sys__enter(long nr, __u64 a0, __u64 a1, __u64 a2, __u64 a3)
{
	__u32 direction = VIGIL_DIR_INGRESS;
	__u64 buf = a1, iovcnt = 0;
	bool mmsg = false;
	struct user_msghdr msg;
	struct vigil_io_args *slot;

	switch (nr) {
	case VIGIL_SYS_CONNECT:
		sys__enter_connect((__s32)a0);
		return;
	case VIGIL_SYS_CLOSE:
		conn__closed((__s32)a0);
		return;
	case VIGIL_SYS_WRITE:
	case VIGIL_SYS_SENDTO:
		direction = VIGIL_DIR_EGRESS;
		break;
	case VIGIL_SYS_SENDFILE64: /* out_fd; the bytes never pass through user memory */
		direction = VIGIL_DIR_EGRESS;
		buf = 0;
		break;
	case VIGIL_SYS_WRITEV:
		direction = VIGIL_DIR_EGRESS;
		iovcnt = a2;
		break;
	case VIGIL_SYS_READ:
		break;
	case VIGIL_SYS_READV:
		iovcnt = a2;
		break;
	/* MSG_PEEK reads bytes that the next read returns again: not stream progress. */
	case VIGIL_SYS_RECVFROM:
		if (a3 & MSG_PEEK)
			return;
		break;
	case VIGIL_SYS_SENDMSG:
	case VIGIL_SYS_RECVMSG:
		if (nr == VIGIL_SYS_SENDMSG)
			direction = VIGIL_DIR_EGRESS;
		else if (a2 & MSG_PEEK)
			return;
		if (capture_bytes == 0 || bpf_probe_read_user(&msg, sizeof(msg), (void *)a1) != 0)
			return;
		buf = (__u64)msg.msg_iov;
		iovcnt = msg.msg_iovlen ? msg.msg_iovlen : 1;
		break;
	/* DNS resolvers send A and AAAA queries in one sendmmsg: a vector of struct
	 * mmsghdr, whose msg_len the kernel fills in per message. */
	case VIGIL_SYS_SENDMMSG:
	case VIGIL_SYS_RECVMMSG:
		if (nr == VIGIL_SYS_SENDMMSG)
			direction = VIGIL_DIR_EGRESS;
		else if (a3 & MSG_PEEK)
			return;
		if ((__u32)a2 == 0)
			return;
		iovcnt = (__u32)a2;
		mmsg = true;
		break;
	default:
		return;
	}
	slot = io__enter((__s32)a0, buf, iovcnt, direction);
	if (slot && mmsg)
		slot->mmsg = 1;
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
	case VIGIL_SYS_READ:
	case VIGIL_SYS_WRITE:
	case VIGIL_SYS_READV:
	case VIGIL_SYS_WRITEV:
	case VIGIL_SYS_SENDFILE64:
	case VIGIL_SYS_SENDTO:
	case VIGIL_SYS_RECVFROM:
	case VIGIL_SYS_SENDMSG:
	case VIGIL_SYS_RECVMSG:
	case VIGIL_SYS_SENDMMSG:
	case VIGIL_SYS_RECVMMSG:
		io__exit(ret);
		return;
	default:
		return;
	}
}

#endif
