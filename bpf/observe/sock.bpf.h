/* Connections: which fds are TCP/UDP sockets over IP, their tuples, and the
 * `conns` table of tracked sockets with their open and close events. */
#ifndef VIGIL_OBSERVE_SOCK_BPF_H
#define VIGIL_OBSERVE_SOCK_BPF_H

#include "lib/consts.bpf.h"
#include "observe/ring.bpf.h"

static __always_inline struct sock *sock__from_fd(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	umode_t mode;

	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return NULL;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* Fills the tuple; false for sockets Vigil does not track (not TCP/UDP over IP). */
static __always_inline bool sock__read_tuple(struct sock *sk, struct vigil_conn_tuple *t)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u16 type = BPF_CORE_READ(sk, sk_type);
	__u16 protocol = BPF_CORE_READ(sk, sk_protocol);

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (type == SOCK_STREAM && protocol == IPPROTO_TCP)
		t->proto = VIGIL_PROTO_TCP;
	else if (type == SOCK_DGRAM && protocol == IPPROTO_UDP)
		t->proto = VIGIL_PROTO_UDP;
	else
		return false;

	t->family = family;
	t->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	t->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		bpf_core_read(t->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(t->raddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(t->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(t->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	return true;
}

/* The peer's FIN arrived: tcp_fin() set RCV_SHUTDOWN. A reset or timeout
 * also sets it (via tcp_done) but records an error, and then no FIN was counted. */
static __always_inline bool tcp__fin_received(struct sock *sk)
{
	__u8 shutdown = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown);

	return (shutdown & RCV_SHUTDOWN) && BPF_CORE_READ(sk, sk_err) == 0;
}

static __always_inline void conn__emit(struct vigil_conn_key *key, struct vigil_conn_value *val,
				       __u32 type, __u32 reason)
{
	struct vigil_conn_event *e;
	struct tcp_sock *tp;

	if (val->conn_id == 0) /* a seed (see conn__adopt): nothing was reported open */
		return;
	e = event__reserve(sizeof(*e));
	if (!e)
		return;
	event__fill_header(&e->hdr, type);
	e->conn_id = val->conn_id;
	e->tuple = val->tuple;
	e->fd = key->fd;
	e->close_reason = reason;
	e->bytes_sent = 0;
	e->bytes_recv = 0;
	if (type == VIGIL_EV_CONN_CLOSE && val->tuple.proto == VIGIL_PROTO_UDP) {
		e->bytes_sent = val->tx_bytes;
		e->bytes_recv = val->rx_bytes;
	} else if (type == VIGIL_EV_CONN_CLOSE && val->tuple.proto == VIGIL_PROTO_TCP) {
		tp = (struct tcp_sock *)val->sk;
		/* Payload bytes; bytes_sent includes retransmissions. */
		e->bytes_sent = BPF_CORE_READ(tp, bytes_sent);
		e->bytes_recv = BPF_CORE_READ(tp, bytes_received);
		/* bytes_received advances with rcv_nxt, which the peer's FIN moves by one. */
		if (e->bytes_recv > 0 && tcp__fin_received((struct sock *)val->sk))
			e->bytes_recv -= 1;
	}
	event__submit(e);
}

/* Slots are claimed with compare-and-swap: threads of one process may connect
 * at once, and tracing programs cannot take a bpf_spin_lock. */
static __always_inline void pid_fds__add(__u32 pid, __s32 fd)
{
	struct vigil_pid_fds fresh = {}, *owned;

	owned = bpf_map_lookup_elem(&pid_conns, &pid);
	if (!owned) {
		bpf_map_update_elem(&pid_conns, &pid, &fresh, BPF_NOEXIST);
		owned = bpf_map_lookup_elem(&pid_conns, &pid);
		if (!owned)
			return;
	}
	for (int i = 0; i < VIGIL_PID_FD_SLOTS; i++) {
		if (__sync_val_compare_and_swap(&owned->slots[i], 0, fd + 1) == 0)
			return;
	}
	owned->overflow = 1;
}

static __always_inline void pid_fds__remove(__u32 pid, __s32 fd)
{
	struct vigil_pid_fds *owned = bpf_map_lookup_elem(&pid_conns, &pid);

	if (!owned)
		return;
	for (int i = 0; i < VIGIL_PID_FD_SLOTS; i++) {
		if (__sync_val_compare_and_swap(&owned->slots[i], fd + 1, 0) == fd + 1)
			return;
	}
}

/* The count of `conns` entries charged to `uid` (created at 0), or NULL. */
static __always_inline __s64 *uid_conns__of(__u32 uid)
{
	__s64 zero = 0, *n = bpf_map_lookup_elem(&uid_conns, &uid);
	if (!n) {
		bpf_map_update_elem(&uid_conns, &uid, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&uid_conns, &uid);
	}
	return n;
}

/* An entry of `conns` goes: its uid's share shrinks (seeds were never charged). */
static __always_inline void uid_conns__release(const struct vigil_conn_value *val)
{
	if (val->conn_id == 0 || val->uid == 0)
		return;
	__s64 *n = bpf_map_lookup_elem(&uid_conns, &val->uid);
	if (n)
		__sync_fetch_and_add(n, -1);
}

/* The filter slot of `key` moves by `delta`: +1 before the kernel adds a key to
 * `conns` (a concurrent lookup then looks), -1 after it removed one. */
static __always_inline void conn_filter__add(const struct vigil_conn_key *key, __s32 delta)
{
	__u32 slot = vigil_conn_filter_slot(key->pid, key->fd);
	__u32 *n = bpf_map_lookup_elem(&conn_filter, &slot);

	if (n)
		__sync_fetch_and_add(n, delta);
}

/* False: `conns` holds no entry for `key` (an array access instead of a hash lookup). */
static __always_inline bool conn_filter__maybe(const struct vigil_conn_key *key)
{
	__u32 slot = vigil_conn_filter_slot(key->pid, key->fd);
	__u32 *n = bpf_map_lookup_elem(&conn_filter, &slot);

	return !n || *n != 0;
}

/* Removes `key` from `conns` (and its count from the filter). */
static __always_inline void conn__forget(const struct vigil_conn_key *key)
{
	if (bpf_map_delete_elem(&conns, key) == 0)
		conn_filter__add(key, -1);
}

/* Starts tracking socket `fd` of the current process and reports it open.
 * role is VIGIL_ROLE_UNKNOWN for a socket met mid-stream. */
static __always_inline void conn__track(__s32 fd, __u8 role)
{
	struct vigil_conn_key key = {};
	struct vigil_conn_value val = {};
	struct sock *sk;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.fd = fd;
	sk = sock__from_fd(fd);
	if (!sk || !sock__read_tuple(sk, &val.tuple))
		return;
	/* A non-blocking connect refused before connect(2) returned (loopback RSTs
	 * arrive synchronously) leaves a closed, unbound socket: nothing to report. */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE)
		return;
	val.tuple.role = role;
	val.sk = (__u64)sk;
	/* A tracked fd reused without close(2) (dup2 over it): report the old one closed. */
	struct vigil_conn_value *old = bpf_map_lookup_elem(&conns, &key);
	bool present = old != NULL; /* the update below replaces an entry: counted already */
	if (old && old->conn_id == 0)
		old = NULL; /* a seed becoming a connection */
	val.uid = (__u32)bpf_get_current_uid_gid();
	__s64 *share = val.uid ? uid_conns__of(val.uid) : NULL;
	if (val.uid && (!share || (!old && *share >= conn_uid_quota))) {
		lost__inc(&lost, VIGIL_LOST_CONN_QUOTA);
		return;
	}
	val.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
	if (old) {
		conn__emit(&key, old, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_SYSCALL);
		uid_conns__release(old);
	}
	if (!present)
		conn_filter__add(&key, 1);
	if (bpf_map_update_elem(&conns, &key, &val, BPF_ANY) != 0) {
		if (!present)
			conn_filter__add(&key, -1);
		lost__inc(&lost, VIGIL_LOST_CONN_TABLE);
		return;
	}
	if (share)
		__sync_fetch_and_add(share, 1);
	if (!old)
		pid_fds__add(key.pid, fd);
	conn__emit(&key, &val, VIGIL_EV_CONN_OPEN, 0);
}

/* A socket open before the agent started is put in `conns` by user space as a
 * seed (conn_id 0, the role it found in /proc): tracked for real, and reported
 * open, at its first use. */
#define CONN_UNTRACKED 0xff /* a `role` that leaves a socket not in `conns` alone */

/* `val` is what `conns` holds at key (key->pid is the current process): a
 * seed is made a connection, no entry at all is tracked with `role` (unless
 * CONN_UNTRACKED). The tracked connection, or NULL. */
static __always_inline struct vigil_conn_value *conn__adopt(struct vigil_conn_key *key,
							    struct vigil_conn_value *val, __u8 role)
{
	if (val && val->conn_id != 0)
		return val;
	if (val)
		role = val->tuple.role;
	else if (role == CONN_UNTRACKED)
		return NULL;
	conn__track(key->fd, role);
	val = bpf_map_lookup_elem(&conns, key);
	if (val && val->conn_id == 0) { /* the fd is no longer that socket */
		conn__forget(key);
		return NULL;
	}
	return val;
}

static __always_inline struct vigil_conn_value *conn__lookup(struct vigil_conn_key *key, __u8 role)
{
	return conn__adopt(key, bpf_map_lookup_elem(&conns, key), role);
}

static __always_inline int conn__accepted(long ret)
{
	if (ret < 0 || (bpf_get_current_pid_tgid() >> 32) == self_pid)
		return 0;
	conn__track((__s32)ret, VIGIL_ROLE_SERVER);
	return 0;
}

/* close(2) of a tracked socket: reported, forgotten. */
static __always_inline void conn__closed(__s32 fd)
{
	struct vigil_conn_key key;
	struct vigil_conn_value *val;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.fd = fd;
	val = bpf_map_lookup_elem(&conns, &key);
	if (!val)
		return;
	conn__emit(&key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_SYSCALL);
	uid_conns__release(val);
	conn__forget(&key);
	pid_fds__remove(key.pid, key.fd);
}

#endif
