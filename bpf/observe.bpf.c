// SPDX-License-Identifier: GPL-2.0
/* Observation programs: process lifecycle (exec/fork/exit), connection
 * lifecycle (connect/accept/close) for TCP and connected UDP, IPv4 and IPv6,
 * the payload of socket syscalls and TLS plaintext at the library boundary.
 * Facts only: every event goes to one ring buffer, decoded by collectors/kernel.
 * This file holds the programs; their helpers are in bpf/observe/. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "observe/proc.bpf.h"
#include "observe/io.bpf.h"
#include "observe/go_tls.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- processes -------------------------------------------------------- */

/* tp_btf where the kernel has BTF for the tracepoints; raw_tp otherwise. The
 * agent enables exactly one of each pair (bpf_program__set_autoload). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf__sched__sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return proc__exec(p, old_pid, bprm);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_tp__sched__sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return proc__exec(p, old_pid, bprm);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tp_btf__sched__sched_process_fork, struct task_struct *parent,
	     struct task_struct *child)
{
	return proc__fork(parent, child);
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(raw_tp__sched__sched_process_fork, struct task_struct *parent,
	     struct task_struct *child)
{
	return proc__fork(parent, child);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_btf__sched__sched_process_exit, struct task_struct *p)
{
	return proc__exit(p);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(raw_tp__sched__sched_process_exit, struct task_struct *p)
{
	return proc__exit(p);
}

/* ---- connections ------------------------------------------------------ */

SEC("tracepoint/syscalls/sys_enter_connect")
int tp__syscalls__sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__s32 fd = (__s32)ctx->args[0];

	if ((pid_tgid >> 32) == self_pid)
		return 0;
	bpf_map_update_elem(&pending_connect, &pid_tgid, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tp__syscalls__sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__s32 *fd = bpf_map_lookup_elem(&pending_connect, &pid_tgid);
	__s32 saved;

	if (!fd)
		return 0;
	saved = *fd;
	bpf_map_delete_elem(&pending_connect, &pid_tgid);
	/* Non-blocking connects report EINPROGRESS; the tuple is already bound. */
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	conn__track(saved, VIGIL_ROLE_CLIENT);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tp__syscalls__sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return conn__accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tp__syscalls__sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return conn__accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int tp__syscalls__sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	conn__closed((__s32)ctx->args[0]);
	return 0;
}

/* ---- TLS plaintext ---------------------------------------------------- */

/* (BPF_KPROBE/BPF_KRETPROBE: the same pt_regs argument access serves uprobes.)
 * Attached by the agent per library inode (no auto-attach); the attach cookie
 * is the agent's number for the library. SSL_write needs no return probe: the
 * socket write it makes confirms it. */
SEC("uprobe")
int BPF_KPROBE(uprobe__ssl_write, void *ssl, const void *buf, int num)
{
	return tls__enter(ctx, VIGIL_TLS_WRITE, (__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(uprobe__ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	return tls__enter(ctx, VIGIL_TLS_WRITE, (__u64)ssl, (__u64)buf, num, (__u64)written);
}

SEC("uprobe")
int BPF_KPROBE(uprobe__ssl_read, void *ssl, void *buf, int num)
{
	return tls__enter(ctx, VIGIL_TLS_READ, (__u64)ssl, (__u64)buf, num > 0 ? num : 0, 0);
}

SEC("uprobe")
int BPF_KPROBE(uprobe__ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	return tls__enter(ctx, VIGIL_TLS_READ, (__u64)ssl, (__u64)buf, num, (__u64)readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__ssl_write, int ret)
{
	return tls__returned(ret, false, VIGIL_TLS_WRITE); /* static copies only (memory BIOs) */
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__ssl_write_ex, int ret)
{
	return tls__returned(ret, true, VIGIL_TLS_WRITE);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__ssl_read, int ret)
{
	return tls__returned(ret, false, VIGIL_TLS_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe__ssl_read_ex, int ret)
{
	return tls__returned(ret, true, VIGIL_TLS_READ);
}

/* Go crypto/tls (see bpf/observe/go_tls.bpf.h): Write at its entry, Read at
 * its entry and at each RET instruction the agent found in it. */
SEC("uprobe")
int uprobe__go_tls_write(struct pt_regs *ctx)
{
	return go__write(ctx);
}

SEC("uprobe")
int uprobe__go_tls_read(struct pt_regs *ctx)
{
	return go__read(ctx);
}

SEC("uprobe")
int uprobe__go_tls_read_ret(struct pt_regs *ctx)
{
	return go__read_returned(ctx);
}

/* ---- payload ----------------------------------------------------------- */

/* Entry of a read/write-family syscall: `enter` names its fd, buffer and
 * direction (with ctx in scope). Every exit runs io__exit. */
#define IO_ENTER(name, enter)                                                      \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp__syscalls__sys_enter_##name(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                           \
		enter;                                                              \
		return 0;                                                           \
	}
#define IO_EXIT(name)                                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int tp__syscalls__sys_exit_##name(struct trace_event_raw_sys_exit *ctx)     \
	{                                                                           \
		io__exit(ctx->ret);                                                 \
		return 0;                                                           \
	}
#define ARG_FD ((__s32)ctx->args[0]) /* the fd argument of every call below */

IO_ENTER(write, io__enter(ARG_FD, ctx->args[1], 0, VIGIL_DIR_EGRESS))
IO_EXIT(write)
IO_ENTER(sendto, io__enter(ARG_FD, ctx->args[1], 0, VIGIL_DIR_EGRESS))
IO_EXIT(sendto)
IO_ENTER(writev, io__enter(ARG_FD, ctx->args[1], ctx->args[2], VIGIL_DIR_EGRESS))
IO_EXIT(writev)
IO_ENTER(sendmsg, io__enter_msg(ARG_FD, ctx->args[1], VIGIL_DIR_EGRESS))
IO_EXIT(sendmsg)
IO_ENTER(sendmmsg, io__enter_mmsg(ARG_FD, ctx->args[1], (__u32)ctx->args[2], VIGIL_DIR_EGRESS))
IO_EXIT(sendmmsg)
IO_ENTER(sendfile64, io__enter(ARG_FD, 0, 0, VIGIL_DIR_EGRESS)) /* out_fd; no buffer */
IO_EXIT(sendfile64)
IO_ENTER(read, io__enter(ARG_FD, ctx->args[1], 0, VIGIL_DIR_INGRESS))
IO_EXIT(read)
/* MSG_PEEK reads bytes that the next read returns again: not stream progress. */
IO_ENTER(recvfrom, if (!(ctx->args[3] & MSG_PEEK)) io__enter(ARG_FD, ctx->args[1], 0, VIGIL_DIR_INGRESS))
IO_EXIT(recvfrom)
IO_ENTER(readv, io__enter(ARG_FD, ctx->args[1], ctx->args[2], VIGIL_DIR_INGRESS))
IO_EXIT(readv)
IO_ENTER(recvmsg, if (!(ctx->args[2] & MSG_PEEK)) io__enter_msg(ARG_FD, ctx->args[1], VIGIL_DIR_INGRESS))
IO_EXIT(recvmsg)
IO_ENTER(recvmmsg, if (!(ctx->args[3] & MSG_PEEK)) io__enter_mmsg(ARG_FD, ctx->args[1], (__u32)ctx->args[2],
							       VIGIL_DIR_INGRESS))
IO_EXIT(recvmmsg)
