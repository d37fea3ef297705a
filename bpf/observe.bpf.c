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
#include "observe/syscalls.bpf.h"
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

/* ---- connections and payload ------------------------------------------ */

/* One tracepoint per syscall and direction; what each call means is in
 * bpf/observe/syscalls.bpf.h. */
#define SYS_ENTER(name, NR)                                                        \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp__syscalls__sys_enter_##name(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                           \
		sys__enter(NR, ctx->args[0]);                                       \
		return 0;                                                           \
	}
#define SYS_EXIT(name, NR)                                                         \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int tp__syscalls__sys_exit_##name(struct trace_event_raw_sys_exit *ctx)     \
	{                                                                           \
		sys__exit(NR, ctx->ret);                                            \
		return 0;                                                           \
	}
#define SYS_BOTH(name, NR) SYS_ENTER(name, NR) SYS_EXIT(name, NR)

SYS_BOTH(connect, VIGIL_SYS_CONNECT)
SYS_EXIT(accept4, VIGIL_SYS_ACCEPT4)
SYS_EXIT(accept, VIGIL_SYS_ACCEPT)
SYS_ENTER(close, VIGIL_SYS_CLOSE)
/* Payload calls: at their exit only (see sys__payload_exit). */
SYS_EXIT(write, VIGIL_SYS_WRITE)
SYS_EXIT(sendto, VIGIL_SYS_SENDTO)
SYS_EXIT(writev, VIGIL_SYS_WRITEV)
SYS_EXIT(sendmsg, VIGIL_SYS_SENDMSG)
SYS_EXIT(sendmmsg, VIGIL_SYS_SENDMMSG)
SYS_EXIT(sendfile64, VIGIL_SYS_SENDFILE64)
SYS_EXIT(read, VIGIL_SYS_READ)
SYS_EXIT(recvfrom, VIGIL_SYS_RECVFROM)
SYS_EXIT(readv, VIGIL_SYS_READV)
SYS_EXIT(recvmsg, VIGIL_SYS_RECVMSG)
SYS_EXIT(recvmmsg, VIGIL_SYS_RECVMMSG)

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
