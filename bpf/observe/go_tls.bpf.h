/* Go crypto/tls plaintext (uprobes on crypto/tls.(*Conn).Write and Read in Go
 * executables, register ABI: receiver in RAX, the []byte in RBX/RCX, the
 * current goroutine's g in R14, the int result in RAX at a RET).
 *
 * No return probes: Go grows goroutine stacks by moving them, and a uretprobe's
 * rewritten return address would be copied with the stack. Write's plaintext is
 * reported at its entry (it is what the call encrypts); Read's at each of its
 * RET instructions (the agent finds them by disassembly), keyed by goroutine:
 * a goroutine blocked in Read may resume on another thread.
 *
 * The socket comes from the Conn itself: its net.Conn's data word, that
 * value's *netFD, and the netFD's Sysfd, at offsets the agent packs into the
 * attach cookie per Go version (bits 0-7: library number, 8-15, 16-23, 24-31:
 * the three offsets). */
#ifndef VIGIL_OBSERVE_GO_TLS_BPF_H
#define VIGIL_OBSERVE_GO_TLS_BPF_H

#include "observe/tls.bpf.h"

/* A crypto/tls Read in flight, by (process, goroutine). */
struct vigil_go_read_key {
	__u32 pid;
	__u32 _pad;
	__u64 g;
};
struct vigil_go_read {
	__u64 buf;
	__s32 fd;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_go_read_key);
	__type(value, struct vigil_go_read);
} go_reads SEC(".maps");

/* The fd of a *tls.Conn; -1 when a pointer on the way cannot be read. */
static __always_inline __s32 go__conn_fd(__u64 conn, __u64 cookie)
{
	__u64 inner = 0, netfd = 0;
	__s64 fd = -1;

	if (bpf_probe_read_user(&inner, sizeof(inner), (void *)(conn + ((cookie >> 8) & 0xff))) != 0 || !inner)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(inner + ((cookie >> 16) & 0xff))) != 0 || !netfd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + ((cookie >> 24) & 0xff))) != 0)
		return -1;
	return fd >= 0 && fd < 0x7fffffff ? (__s32)fd : -1;
}

/* The tracked connection of fd in the current process; a socket older than the
 * agent is tracked from here (as io__enter does inside a libssl call). */
static __always_inline struct vigil_conn_value *go__conn(__u32 pid, __s32 fd)
{
	struct vigil_conn_key key = { .pid = pid, .fd = fd };

	if (fd < 0)
		return NULL;
	return conn__lookup(&key, VIGIL_ROLE_UNKNOWN);
}

static __always_inline bool go__skip(void)
{
	return capture_bytes == 0 || (bpf_get_current_pid_tgid() >> 32) == self_pid;
}

static __always_inline int go__write(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 len = ctx->cx;
	struct vigil_conn_value *val;
	__s32 fd;

	if (go__skip() || len == 0)
		return 0;
	fd = go__conn_fd(ctx->ax, cookie);
	val = go__conn(pid, fd);
	if (!val) {
		lost__inc(&lost, VIGIL_LOST_TLS_NO_SOCKET);
		return 0;
	}
	tls__emit(val, fd, ctx->bx, len > 0xffffffffu ? 0xffffffffu : (__u32)len, VIGIL_DIR_EGRESS,
		  (__u8)cookie);
	return 0;
}

static __always_inline int go__read(struct pt_regs *ctx)
{
	struct vigil_go_read_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .g = ctx->r14 };
	struct vigil_go_read r = {};

	if (go__skip() || ctx->cx == 0)
		return 0;
	r.buf = ctx->bx;
	r.fd = go__conn_fd(ctx->ax, bpf_get_attach_cookie(ctx));
	bpf_map_update_elem(&go_reads, &k, &r, BPF_ANY);
	return 0;
}

static __always_inline int go__read_returned(struct pt_regs *ctx)
{
	struct vigil_go_read_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .g = ctx->r14 };
	struct vigil_conn_value *val;
	struct vigil_go_read *r, got;
	long n = (long)ctx->ax;

	r = bpf_map_lookup_elem(&go_reads, &k);
	if (!r)
		return 0;
	got = *r;
	bpf_map_delete_elem(&go_reads, &k);
	if (n <= 0)
		return 0;
	val = go__conn(k.pid, got.fd);
	if (!val) {
		lost__inc(&lost, VIGIL_LOST_TLS_NO_SOCKET);
		return 0;
	}
	tls__emit(val, got.fd, got.buf, n > 0xffffffffL ? 0xffffffffu : (__u32)n, VIGIL_DIR_INGRESS,
		  (__u8)bpf_get_attach_cookie(ctx));
	return 0;
}

#endif
