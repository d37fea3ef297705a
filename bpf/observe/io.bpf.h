/* Payload of read/write-family syscalls on tracked sockets, looked at once,
 * at the call's exit: its arguments are still in the task's saved user
 * registers, and its return value says how many bytes moved. The bytes are
 * copied for connections whose first bytes look like HTTP. */
#ifndef VIGIL_OBSERVE_IO_BPF_H
#define VIGIL_OBSERVE_IO_BPF_H

#include "observe/sock.bpf.h"
#include "observe/tls.bpf.h"

/* readv/writev/sendmsg/recvmsg: iovecs copied per call (verifier loop bound). */
#define VIGIL_MAX_IOV 8

/* How a call's buffer is given. */
enum io_kind {
	IO_FLAT,   /* buf, count */
	IO_IOV,    /* struct iovec *, count of them */
	IO_MSGHDR, /* struct user_msghdr * */
	IO_MMSG,   /* struct mmsghdr *, the call returns how many messages moved */
	IO_NONE,   /* sendfile: the bytes never pass through user memory (buf is 0) */
};

/* Messages of one sendmmsg/recvmmsg whose byte counts are summed (verifier loop
 * bound; the kernel caps vlen at UIO_MAXIOV = 1024). A larger batch counts its
 * first VIGIL_MAX_MMSG messages. */
#define VIGIL_MAX_MMSG 64

/* The bytes moved by the first `n` messages of an mmsghdr vector; `*buf` is
 * left pointing at the first message's iovecs (the payload looked at) and
 * `first_len` is that message's length (its buffers may be longer). */
static __always_inline long io__mmsg_done(__u64 *buf, __u64 *iovcnt, long n, __u32 *first_len)
{
	struct mmsghdr *vec = (struct mmsghdr *)*buf;
	struct mmsghdr first;
	long total;
	__u32 len;

	if (bpf_probe_read_user(&first, sizeof(first), vec) != 0)
		return 0;
	*first_len = first.msg_len;
	total = first.msg_len;
	for (int i = 1; i < VIGIL_MAX_MMSG; i++) {
		if (i >= n || bpf_probe_read_user(&len, sizeof(len), &vec[i].msg_len) != 0)
			break;
		total += len;
	}
	/* No iovec: counted, not captured. */
	*buf = first.msg_hdr.msg_iovlen ? (__u64)first.msg_hdr.msg_iov : 0;
	*iovcnt = first.msg_hdr.msg_iovlen;
	return total;
}

static __always_inline __u32 io__copy_iov(struct vigil_data_event *e, __u64 iov_addr,
					  __u64 iovcnt, __u32 want)
{
	struct iovec *iovp = (struct iovec *)iov_addr;
	struct iovec iov;
	__u32 off = 0;
	__u64 len;

	for (int i = 0; i < VIGIL_MAX_IOV; i++) {
		if (i >= iovcnt || off >= want || off >= VIGIL_MAX_CAPTURE)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), &iovp[i]) != 0)
			break;
		len = iov.iov_len;
		if (len > want - off)
			len = want - off;
		/* Restated for the verifier: off < cap and len <= cap keep the copy
		 * inside data[2 * cap]. */
		if (len > VIGIL_MAX_CAPTURE)
			len = VIGIL_MAX_CAPTURE;
		if (len == 0)
			continue;
		if (bpf_probe_read_user(&e->data[off & (VIGIL_MAX_CAPTURE - 1)], len, iov.iov_base) != 0)
			break;
		off += len;
	}
	return off;
}

/* Most API messages are small: their record is built straight in the ring. */
static __always_inline void io__emit_small(struct vigil_conn_value *val, struct data_meta *m, __u64 buf,
					   __u32 want)
{
	struct vigil_data_event *e = data__reserve_small();

	if (!e)
		return;
	if (want > VIGIL_SMALL_PAYLOAD) /* restated for the verifier */
		want = VIGIL_SMALL_PAYLOAD;
	if (bpf_probe_read_user(e->data, want, (void *)buf) != 0)
		goto discard;
	if (val->l7 == VIGIL_L7_UNKNOWN) {
		if (want < 4)
			goto discard;
		val->l7 = l7__classify(e->data, want);
		if (l7__skip(val->l7))
			goto discard;
	}
	m->l7 = val->l7;
	data__submit(e, val, m, want, true);
	return;
discard:
	bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
}

/* A payload call on `fd` returned `ret` (capture on: see sys__payload_exit). Files, pipes and untracked sockets
 * stop at the filter in front of `conns` (one array access), the rest after
 * the hash lookup; a call that moved nothing stops before any lookup, unless
 * the thread is inside a TLS call (its socket I/O names the call's fd). */
static __always_inline void io__done(__s32 fd, __u64 buf, __u64 count, __u32 direction, enum io_kind kind,
				     long ret)
{
	struct vigil_conn_value *val;
	struct vigil_conn_key key;
	struct vigil_data_event *e;
	struct data_meta m = {};
	struct user_msghdr msg;
	__u64 iovcnt = 0;
	__u32 want, captured;
	__u32 first_len = 0xffffffff; /* sendmmsg/recvmmsg: only the first message is looked at */
	struct vigil_tls_args *tls;

	tls = tls_enabled ? tls__slot() : NULL;
	if (ret <= 0 && !tls)
		return;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.fd = fd;
	/* A socket older than the agent met inside a TLS call is tracked from
	 * here (user space tells client from server). */
	val = conn_filter__maybe(&key) ? bpf_map_lookup_elem(&conns, &key) : NULL;
	if (!val || val->conn_id == 0) {
		val = conn__adopt(&key, val, !val && tls__in_call(tls) ? VIGIL_ROLE_UNKNOWN : CONN_UNTRACKED);
		if (!val)
			return;
	}
	/* Connections known to carry neither HTTP nor TLS skip the TLS slot. */
	if (tls && val->l7 != VIGIL_L7_OTHER) {
		switch (tls__on_socket_io(tls, key.pid, fd, direction)) {
		case TLS_IO_WRITE: /* an SSL_write's records went out: its plaintext once */
			if (ret > 0)
				tls__write_done(tls, val, fd);
			return;
		case TLS_IO_RECORDS: /* the records of a TLS call: its plaintext is what we report */
			return;
		case TLS_IO_NONE:
			break;
		}
	}
	if (ret <= 0)
		return;
	/* TCP byte counts come from tcp_sock: nothing left to do once the payload
	 * is known not to interest us. UDP keeps counting here. */
	if (l7__skip(val->l7) && val->tuple.proto == VIGIL_PROTO_TCP)
		return;
	switch (kind) {
	case IO_FLAT:
	case IO_NONE:
		break;
	case IO_IOV:
		iovcnt = count;
		break;
	case IO_MSGHDR:
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0)
			return;
		buf = (__u64)msg.msg_iov;
		iovcnt = msg.msg_iovlen ? msg.msg_iovlen : 1;
		break;
	case IO_MMSG: /* the call returned a count of messages: the bytes are in the vector */
		ret = io__mmsg_done(&buf, &iovcnt, ret, &first_len);
		if (ret <= 0)
			return;
		break;
	}
	m.offset = __sync_fetch_and_add(direction == VIGIL_DIR_EGRESS ? &val->tx_bytes : &val->rx_bytes,
					(__u64)ret);
	if (l7__skip(val->l7))
		return;
	/* The offset above already moved, so a drop here shows user space a gap,
	 * never spliced streams. */
	if (val->l7 != VIGIL_L7_UNKNOWN && data__ring_full(&m))
		return;
	m.length = ret;
	m.fd = fd;
	m.direction = direction;
	want = ret < capture_bytes ? ret : capture_bytes;
	if (want > first_len)
		want = first_len;
	if (want > VIGIL_MAX_CAPTURE)
		want = VIGIL_MAX_CAPTURE;
	if (buf != 0 && iovcnt == 0 && want <= VIGIL_SMALL_PAYLOAD) {
		io__emit_small(val, &m, buf, want);
		return;
	}
	e = data__scratch();
	if (!e)
		return;

	if (buf == 0) {
		/* sendfile: an empty record keeps the stream's offsets honest (user
		 * space sees an explicit gap). */
		if (val->l7 == VIGIL_L7_UNKNOWN)
			return;
		captured = 0;
	} else if (iovcnt == 0) {
		if (bpf_probe_read_user(e->data, want, (void *)buf) != 0)
			return;
		captured = want;
	} else {
		captured = io__copy_iov(e, buf, iovcnt, want);
	}
	if (val->l7 == VIGIL_L7_UNKNOWN) {
		if (captured < 4)
			return;
		val->l7 = l7__classify(e->data, captured);
		if (l7__skip(val->l7))
			return;
	}
	m.l7 = val->l7;
	data__submit(e, val, &m, captured, false);
}

#endif
