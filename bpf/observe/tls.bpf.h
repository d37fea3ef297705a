/* TLS plaintext at the library boundary (uprobes on SSL_read / SSL_write and
 * their _ex forms): the call in flight per thread, the socket it uses, and its
 * plaintext as payload records with their own stream offsets. */
#ifndef VIGIL_OBSERVE_TLS_BPF_H
#define VIGIL_OBSERVE_TLS_BPF_H

#include "observe/l7.bpf.h"
#include "observe/ring.bpf.h"
#include "observe/sock.bpf.h"

/* The thread's TLS slot: NULL until it first entered a TLS library call. */
static __always_inline struct vigil_tls_args *tls__slot(void)
{
	return bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, 0);
}

static __always_inline bool tls__in_call(const struct vigil_tls_args *t)
{
	return t && t->op != VIGIL_TLS_NONE;
}

/* What a socket syscall is to the thread's TLS calls. */
enum tls_io {
	TLS_IO_NONE,    /* not part of a TLS call: its bytes are the stream's */
	TLS_IO_RECORDS, /* the records of a TLS call: its plaintext is what is reported */
	TLS_IO_WRITE,   /* the records of an SSL_write not yet reported: report it if they went out */
};

/* A socket syscall on a tracked socket by a thread with TLS slot `t`: inside a
 * TLS library call it names the call's fd. */
static __always_inline enum tls_io tls__on_socket_io(struct vigil_tls_args *t, __u32 pid, __s32 fd,
						     __u32 direction)
{
	/* An SSL_write whose record already went out is over: without a return
	 * probe its slot lingers, and must not claim another socket's I/O. */
	if (t->op == VIGIL_TLS_WRITE && t->emitted)
		t->op = VIGIL_TLS_NONE;
	if (t->op == VIGIL_TLS_NONE) {
		if (direction == VIGIL_DIR_INGRESS)
			t->last_read_fd1 = fd + 1;
		return TLS_IO_NONE;
	}
	if (t->fd != fd) {
		struct vigil_ssl_key k = { .pid = pid, .ssl = t->ssl };
		__s32 *known = bpf_map_lookup_elem(&ssl_fds, &k);
		t->fd = fd;
		if (!known || *known != fd) /* an LRU update costs more than this lookup */
			bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	}
	if (t->op == VIGIL_TLS_WRITE && !t->emitted && direction == VIGIL_DIR_EGRESS)
		return TLS_IO_WRITE;
	return TLS_IO_RECORDS;
}

/* Reports `len` plaintext bytes at `buf` of a TLS connection. Plaintext has
 * its own stream offsets (tls_tx / tls_rx) and its own protocol inference. */
static __always_inline void tls__emit(struct vigil_conn_value *val, __s32 fd, __u64 buf, __u32 len,
				       __u32 direction, __u8 lib)
{
	struct data_meta m = { .length = len, .fd = fd, .direction = direction, .tls = lib };
	struct vigil_data_event *e;
	__u32 want;

	m.offset = __sync_fetch_and_add(direction == VIGIL_DIR_EGRESS ? &val->tls_tx : &val->tls_rx, (__u64)len);
	val->tls = lib;
	if (val->tls_l7 == VIGIL_L7_OTHER)
		return;
	if (val->tls_l7 != VIGIL_L7_UNKNOWN && data__ring_full(&m))
		return;
	e = data__scratch();
	if (!e)
		return;
	want = len < capture_bytes ? len : capture_bytes;
	if (want > VIGIL_MAX_CAPTURE)
		want = VIGIL_MAX_CAPTURE;
	if (want == 0 || bpf_probe_read_user(e->data, want, (void *)buf) != 0)
		return;
	if (val->tls_l7 == VIGIL_L7_UNKNOWN) {
		if (want < 4)
			return;
		val->tls_l7 = l7__classify(e->data, want);
		if (l7__skip(val->tls_l7)) {
			val->tls_l7 = VIGIL_L7_OTHER;
			return;
		}
	}
	m.l7 = val->tls_l7;
	data__submit(e, val, &m, want, false);
}

/* The socket write inside an SSL_write succeeded: its plaintext goes out once. */
static __always_inline void tls__write_done(struct vigil_tls_args *t, struct vigil_conn_value *val, __s32 fd)
{
	__u64 n;

	if (t->op != VIGIL_TLS_WRITE || t->emitted)
		return;
	t->emitted = 1;
	n = t->num;
	if (n > 0xffffffffu)
		n = 0xffffffffu;
	tls__emit(val, fd, t->buf, (__u32)n, VIGIL_DIR_EGRESS, t->lib);
}

static __always_inline int tls__enter(struct pt_regs *ctx, __u8 op, __u64 ssl, __u64 buf, __u64 num,
				      __u64 out_len)
{
	struct vigil_tls_args *t;

	/* The agent's own TLS (its webhook and OTLP sinks on BoringSSL): never
	 * reported, or each delivery would make events to deliver. */
	if (capture_bytes == 0 || (bpf_get_current_pid_tgid() >> 32) == self_pid)
		return 0;
	t = bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return 0;
	t->ssl = ssl;
	t->buf = buf;
	t->out_len = out_len;
	t->fd = -1;
	t->num = num > 0xffffffffu ? 0xffffffffu : (__u32)num;
	t->op = op;
	t->lib = (__u8)bpf_get_attach_cookie(ctx);
	t->emitted = 0;
	return 0;
}

/* The fd of a TLS call that made no socket syscall: the one its SSL * was last
 * seen using; else (memory BIOs) the socket this thread last read, which is
 * then remembered for the SSL *. -1 when unknown. */
static __always_inline __s32 tls__fd_of(struct vigil_tls_args *t, __u32 pid)
{
	struct vigil_ssl_key k = { .pid = pid, .ssl = t->ssl };
	__s32 *known = bpf_map_lookup_elem(&ssl_fds, &k);
	__s32 fd;

	if (known)
		return *known;
	if (t->last_read_fd1 <= 0)
		return -1;
	fd = t->last_read_fd1 - 1;
	bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	return fd;
}

/* A TLS call of kind `op` returned `n` (SSL_read/SSL_write: a byte count;
 * the _ex forms: 1 and the count in *out_len). Reports its plaintext, tied to
 * the call's socket. */
static __always_inline int tls__returned(long n, bool ex, __u8 op)
{
	struct vigil_tls_args *t;
	struct vigil_conn_value *val;
	struct vigil_conn_key key;
	__u64 got = 0;

	t = tls__slot();
	if (!t || t->op != op)
		return 0;
	t->op = VIGIL_TLS_NONE;
	if (t->emitted)
		return 0; /* a socket write inside the call already reported it */
	if (ex) {
		if (n != 1 || !t->out_len || bpf_probe_read_user(&got, sizeof(got), (void *)t->out_len) != 0)
			return 0;
	} else {
		if (n <= 0)
			return 0; /* WANT_READ/WANT_WRITE: the caller retries with the same bytes */
		got = n;
	}
	if (got == 0)
		return 0;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.fd = t->fd >= 0 ? t->fd : tls__fd_of(t, key.pid);
	val = key.fd >= 0 ? conn__lookup(&key, CONN_UNTRACKED) : NULL;
	if (!val) {
		lost__inc(&lost, VIGIL_LOST_TLS_NO_SOCKET);
		return 0;
	}
	t->emitted = 1;
	tls__emit(val, key.fd, t->buf, got > 0xffffffffu ? 0xffffffffu : (__u32)got,
		  op == VIGIL_TLS_WRITE ? VIGIL_DIR_EGRESS : VIGIL_DIR_INGRESS, t->lib);
	return 0;
}

#endif
