// SPDX-License-Identifier: GPL-2.0
/* Observation programs: process lifecycle (exec/fork/exit) and connection
 * lifecycle (connect/accept/close) for TCP and connected UDP, IPv4 and IPv6.
 * Facts only: every event goes to one ring buffer, decoded by collectors/. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "vigil/abi.h"
#include "observe.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the agent between open and load. */
const volatile __u32 abi_version = VIGIL_ABI_VERSION;
const volatile __u32 self_pid = 0; /* the agent: never report its own traffic */
const volatile __u32 capture_bytes = 0; /* payload bytes copied per syscall; 0: none */
const volatile __u32 infer_l7 = 1;      /* 0: copy every connection's payload (bench only) */
/* Set by the agent once a TLS library is probed: socket syscalls then check
 * whether they run inside a TLS call. */
__u32 tls_enabled = 0;

__u64 next_conn_id = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the agent before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_LOST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Socket fds being tracked, by (pid, fd). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_conn_key);
	__type(value, struct vigil_conn_value);
} conns SEC(".maps");

/* The entries of `conns` each process owns (struct vigil_pid_fds), so that a
 * process exit closes them directly instead of walking all of `conns`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct vigil_pid_fds);
} pid_conns SEC(".maps");

/* connect(2) arguments between sys_enter and sys_exit, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __s32);
} pending_connect SEC(".maps");

/* Socket bytes not worth copying: not HTTP, or TLS records (see tls__emit). */
static __always_inline bool l7__skip(__u32 l7)
{
	return l7 == VIGIL_L7_OTHER || l7 == VIGIL_L7_TLS;
}

static __always_inline void lost__inc(__u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(&lost, &slot);

	if (count)
		*count += 1;
}

static __always_inline void *event__reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		lost__inc(VIGIL_LOST_RINGBUF);
	return e;
}

/* Waking the agent for every record costs a wakeup (and often a context
 * switch) in the traced task; the agent polls on a 20 ms timer anyway, so
 * wake it only when the ring buffer is filling up. */
#define VIGIL_WAKEUP_BYTES (256 * 1024)
static __always_inline __u64 event__wakeup_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= VIGIL_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										: BPF_RB_NO_WAKEUP;
}

static __always_inline void event__fill_header(struct vigil_event_header *hdr, __u32 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	hdr->ts_ns = bpf_ktime_get_boot_ns();
	hdr->cgroup_id = bpf_get_current_cgroup_id();
	hdr->type = type;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
	hdr->ppid = BPF_CORE_READ(task, real_parent, tgid);
	hdr->uid = (__u32)uid_gid;
	hdr->gid = uid_gid >> 32;
	bpf_get_current_comm(hdr->comm, sizeof(hdr->comm));
}

/* Payload records: only what user space cannot get from the connection. */
static __always_inline void event__fill_header_lite(struct vigil_event_header *hdr, __u32 type)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	__builtin_memset(hdr, 0, sizeof(*hdr));
	hdr->ts_ns = bpf_ktime_get_boot_ns();
	hdr->type = type;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
}

/* ---- processes -------------------------------------------------------- */

static __always_inline int proc__exec(struct task_struct *task, pid_t old_pid,
				      struct linux_binprm *bprm)
{
	struct vigil_exec_event *e;
	const char *filename;
	long n;

	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_EXEC);
	e->old_tid = old_pid;
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	e->filename_len = n > 0 ? n - 1 : 0;
	bpf_ringbuf_submit(e, event__wakeup_flags());
	return 0;
}

static __always_inline int proc__fork(struct task_struct *parent, struct task_struct *child)
{
	struct vigil_fork_event *e;
	__u32 child_pid = BPF_CORE_READ(child, tgid);

	/* Threads share the parent's process entry: only new processes count. */
	if (BPF_CORE_READ(child, pid) != child_pid)
		return 0;
	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_FORK);
	e->child_pid = child_pid;
	e->_pad = 0;
	bpf_ringbuf_submit(e, event__wakeup_flags());
	return 0;
}

struct exit_walk {
	__u32 pid;
};

static __always_inline void conn__emit(struct vigil_conn_key *key, struct vigil_conn_value *val,
				       __u32 type, __u32 reason);

static long conn__close_on_exit(struct bpf_map *map, struct vigil_conn_key *key,
				struct vigil_conn_value *val, struct exit_walk *walk)
{
	if (key->pid != walk->pid)
		return 0;
	conn__emit(key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_EXIT);
	bpf_map_delete_elem(map, key);
	return 0;
}

static __always_inline int proc__exit(struct task_struct *task)
{
	struct vigil_exit_event *e;
	struct exit_walk walk;
	struct vigil_pid_fds *owned;

	/* signal->live reaches 0 in do_exit() before this tracepoint fires, and the
	 * fd table is released only after it: the sockets are still readable. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	walk.pid = BPF_CORE_READ(task, tgid);
	owned = bpf_map_lookup_elem(&pid_conns, &walk.pid);
	if (owned) {
		if (owned->overflow) {
			/* More sockets than slots: the full walk (~3 ns per bucket). */
			bpf_for_each_map_elem(&conns, conn__close_on_exit, &walk, 0);
		} else {
			for (int i = 0; i < VIGIL_PID_FD_SLOTS; i++) {
				struct vigil_conn_key key = {.pid = walk.pid, .fd = owned->slots[i] - 1};
				struct vigil_conn_value *val;

				if (owned->slots[i] == 0)
					continue;
				val = bpf_map_lookup_elem(&conns, &key);
				if (!val)
					continue;
				conn__emit(&key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_EXIT);
				bpf_map_delete_elem(&conns, &key);
			}
		}
		bpf_map_delete_elem(&pid_conns, &walk.pid);
	}
	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_EXIT);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	bpf_ringbuf_submit(e, event__wakeup_flags());
	return 0;
}

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
	struct vigil_conn_event *e = event__reserve(sizeof(*e));
	struct tcp_sock *tp;

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
	bpf_ringbuf_submit(e, event__wakeup_flags());
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
	val.conn_id = __sync_fetch_and_add(&next_conn_id, 1) + 1;
	/* A tracked fd reused without close(2) (dup2 over it): report the old one closed. */
	struct vigil_conn_value *old = bpf_map_lookup_elem(&conns, &key);
	if (old)
		conn__emit(&key, old, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_SYSCALL);
	if (bpf_map_update_elem(&conns, &key, &val, BPF_ANY) != 0) {
		lost__inc(VIGIL_LOST_CONN_TABLE);
		return;
	}
	if (!old)
		pid_fds__add(key.pid, fd);
	conn__emit(&key, &val, VIGIL_EV_CONN_OPEN, 0);
}

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

static __always_inline int conn__accepted(long ret)
{
	if (ret < 0 || (bpf_get_current_pid_tgid() >> 32) == self_pid)
		return 0;
	conn__track((__s32)ret, VIGIL_ROLE_SERVER);
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
	struct vigil_conn_key key;
	struct vigil_conn_value *val;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.fd = (__s32)ctx->args[0];
	val = bpf_map_lookup_elem(&conns, &key);
	if (!val)
		return 0;
	conn__emit(&key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_SYSCALL);
	bpf_map_delete_elem(&conns, &key);
	pid_fds__remove(key.pid, key.fd);
	return 0;
}

/* ---- payload ----------------------------------------------------------- */

/* One scratch record per CPU: too large for the BPF stack, and ring-buffer
 * reservations need a constant size, so records are built here and copied out
 * with bpf_ringbuf_output at their real length. A plain array indexed by CPU
 * (sized by the agent) because per-CPU values are limited to 32 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_data_event);
} data_scratch SEC(".maps");

/* Per-thread slot for the syscall in flight: task storage, not a global hash,
 * because every read/write on a tracked socket passes through it. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_io_args);
} pending_io SEC(".maps");

/* The TLS library call in flight on a thread (see tls__enter). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_tls_args);
} tls_pending SEC(".maps");

/* The fd each SSL * last did socket I/O on: for reads served from the
 * library's buffer, which make no syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* readv/writev/sendmsg/recvmsg: iovecs copied per call (verifier loop bound). */
#define VIGIL_MAX_IOV 8

static __always_inline bool tls__in_call(void)
{
	struct vigil_tls_args *t = bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, 0);
	return t && t->op != VIGIL_TLS_NONE;
}

/* A socket syscall on a tracked socket inside a TLS library call: it names the
 * call's fd. An SSL_write's plaintext is reported when its syscall succeeds.
 * True when the syscall belongs to a TLS call. */
static __always_inline bool tls__on_socket_io(__u32 pid, __s32 fd, __u32 direction)
{
	struct vigil_tls_args *t;
	struct vigil_io_args *slot;

	t = bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, 0);
	if (!t)
		return false;
	/* An SSL_write whose record already went out is over: without a return
	 * probe its slot lingers, and must not claim another socket's I/O. */
	if (t->op == VIGIL_TLS_WRITE && t->emitted)
		t->op = VIGIL_TLS_NONE;
	if (t->op == VIGIL_TLS_NONE) {
		if (direction == VIGIL_DIR_INGRESS)
			t->last_read_fd1 = fd + 1;
		return false;
	}
	if (t->fd != fd) {
		struct vigil_ssl_key k = { .pid = pid, .ssl = t->ssl };
		__s32 *known = bpf_map_lookup_elem(&ssl_fds, &k);
		t->fd = fd;
		if (!known || *known != fd) /* an LRU update costs more than this lookup */
			bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	}
	if (t->op == VIGIL_TLS_WRITE && !t->emitted && direction == VIGIL_DIR_EGRESS) {
		slot = bpf_task_storage_get(&pending_io, bpf_get_current_task_btf(), 0,
					    BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (slot) {
			slot->buf = 0;
			slot->iovcnt = 0;
			slot->fd = fd;
			slot->direction = VIGIL_DIR_EGRESS;
			slot->tls_write = 1;
		}
	}
	return true;
}

static __always_inline void io__enter(__s32 fd, __u64 buf, __u64 iovcnt, __u32 direction)
{
	struct vigil_conn_key key;
	struct vigil_conn_value *val;
	struct vigil_io_args *slot;
	__u64 pid_tgid;

	if (capture_bytes == 0)
		return;
	pid_tgid = bpf_get_current_pid_tgid();
	key.pid = pid_tgid >> 32;
	key.fd = fd;
	/* Files, pipes and untracked sockets stop here, after one hash lookup. */
	val = bpf_map_lookup_elem(&conns, &key);
	if (!val) {
		/* A socket older than the agent, met inside a TLS call: track it from
		 * here (role 0: user space tells client from server). */
		if (!tls_enabled || !tls__in_call())
			return;
		conn__track(fd, 0);
		val = bpf_map_lookup_elem(&conns, &key);
		if (!val)
			return;
	}
	/* Connections known to carry neither HTTP nor TLS skip the TLS slot lookup. */
	if (tls_enabled && val->l7 != VIGIL_L7_OTHER && tls__on_socket_io(key.pid, fd, direction))
		return; /* the records of a TLS call: its plaintext is what we report */
	/* TCP byte counts come from tcp_sock: nothing left to do once the payload
	 * is known not to interest us. UDP keeps counting here. */
	if (l7__skip(val->l7) && val->tuple.proto == VIGIL_PROTO_TCP)
		return;
	slot = bpf_task_storage_get(&pending_io, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot)
		return;
	slot->buf = buf;
	slot->iovcnt = iovcnt;
	slot->fd = fd;
	slot->direction = direction;
	slot->tls_write = 0;
}

static __always_inline void io__enter_msg(__s32 fd, __u64 umsg, __u32 direction)
{
	struct user_msghdr msg;

	if (capture_bytes == 0)
		return;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)umsg) != 0)
		return;
	io__enter(fd, (__u64)msg.msg_iov, msg.msg_iovlen ? msg.msg_iovlen : 1, direction);
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

/* First payload bytes of a connection: worth copying (HTTP/1.x, h2c) or not. */
static __always_inline __u32 l7__classify(const char *d, __u32 len)
{
	if (!infer_l7)
		return VIGIL_L7_HTTP1;
	/* An HTTP/2 server speaks first: its SETTINGS frame (type 4 on stream 0). */
	if (len >= 9 && d[0] == 0 && d[3] == 4 && (d[4] & ~1) == 0 && d[5] == 0 && d[6] == 0 && d[7] == 0 &&
	    d[8] == 0)
		return VIGIL_L7_HTTP2;
	if (d[0] == 0x16 && d[1] == 0x03 && d[2] <= 0x04) /* a TLS handshake record */
		return VIGIL_L7_TLS;
	if (d[0] == 'H' && d[1] == 'T' && d[2] == 'T' && d[3] == 'P')
		return VIGIL_L7_HTTP1;
	if (d[0] == 'P' && d[1] == 'R' && d[2] == 'I' && d[3] == ' ')
		return VIGIL_L7_HTTP2;
	if ((d[0] == 'G' && d[1] == 'E' && d[2] == 'T' && d[3] == ' ') ||
	    (d[0] == 'P' && d[1] == 'O' && d[2] == 'S' && d[3] == 'T') ||
	    (d[0] == 'P' && d[1] == 'U' && d[2] == 'T' && d[3] == ' ') ||
	    (d[0] == 'P' && d[1] == 'A' && d[2] == 'T' && d[3] == 'C') ||
	    (d[0] == 'D' && d[1] == 'E' && d[2] == 'L' && d[3] == 'E') ||
	    (d[0] == 'H' && d[1] == 'E' && d[2] == 'A' && d[3] == 'D') ||
	    (d[0] == 'O' && d[1] == 'P' && d[2] == 'T' && d[3] == 'I') ||
	    (d[0] == 'C' && d[1] == 'O' && d[2] == 'N' && d[3] == 'N') ||
	    (d[0] == 'T' && d[1] == 'R' && d[2] == 'A' && d[3] == 'C'))
		return VIGIL_L7_HTTP1;
	return VIGIL_L7_OTHER;
}


#define VIGIL_SMALL_PAYLOAD (VIGIL_SMALL_RECORD - offsetof(struct vigil_data_event, data))

static __always_inline void io__emit_small(struct vigil_conn_value *val, struct vigil_io_args *args,
					   __u64 offset, long ret, __u32 want)
{
	struct vigil_data_event *e;

	e = bpf_ringbuf_reserve(&events, VIGIL_SMALL_RECORD, 0);
	if (!e) {
		lost__inc(VIGIL_LOST_DATA_RINGBUF);
		return;
	}
	if (want > VIGIL_SMALL_PAYLOAD) /* restated for the verifier */
		want = VIGIL_SMALL_PAYLOAD;
	if (bpf_probe_read_user(e->data, want, (void *)args->buf) != 0)
		goto discard;
	if (val->l7 == VIGIL_L7_UNKNOWN) {
		if (want < 4)
			goto discard;
		val->l7 = l7__classify(e->data, want);
		if (l7__skip(val->l7))
			goto discard;
	}
	event__fill_header_lite(&e->hdr, VIGIL_EV_DATA);
	e->conn_id = val->conn_id;
	e->offset = offset;
	e->length = ret;
	e->captured = want;
	e->fd = args->fd;
	e->direction = args->direction;
	e->role = val->tuple.role;
	e->l7 = val->l7;
	e->tls = 0;
	bpf_ringbuf_submit(e, event__wakeup_flags());
	return;
discard:
	bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
}

/* ---- TLS plaintext (uprobes on SSL_read / SSL_write and their _ex forms) ---- */

/* Reports `len` plaintext bytes at `buf` of a TLS connection. Plaintext has
 * its own stream offsets (tls_tx / tls_rx) and its own protocol inference. */
static __always_inline void tls__emit(struct vigil_conn_value *val, __s32 fd, __u64 buf, __u32 len,
				       __u32 direction, __u8 lib)
{
	struct vigil_data_event *e;
	__u32 cpu, want;
	__u64 offset;

	offset = __sync_fetch_and_add(direction == VIGIL_DIR_EGRESS ? &val->tls_tx : &val->tls_rx, (__u64)len);
	val->tls = lib;
	if (val->tls_l7 == VIGIL_L7_OTHER)
		return;
	if (val->tls_l7 != VIGIL_L7_UNKNOWN &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + sizeof(struct vigil_data_event) >
		    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE)) {
		lost__inc(VIGIL_LOST_DATA_RINGBUF);
		return;
	}
	cpu = bpf_get_smp_processor_id();
	e = bpf_map_lookup_elem(&data_scratch, &cpu);
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
	event__fill_header_lite(&e->hdr, VIGIL_EV_DATA);
	e->conn_id = val->conn_id;
	e->offset = offset;
	e->length = len;
	e->captured = want;
	e->fd = fd;
	e->direction = direction;
	e->role = val->tuple.role;
	e->l7 = val->tls_l7;
	e->tls = lib;
	if (bpf_ringbuf_output(&events, e, offsetof(struct vigil_data_event, data) + want,
			       event__wakeup_flags()) != 0)
		lost__inc(VIGIL_LOST_DATA_RINGBUF);
}

/* The socket write inside an SSL_write succeeded: its plaintext goes out once. */
static __always_inline void tls__write_done(struct vigil_conn_value *val, __s32 fd)
{
	struct vigil_tls_args *t;
	__u64 n;

	t = bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, 0);
	if (!t || t->op != VIGIL_TLS_WRITE || t->emitted)
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

	if (capture_bytes == 0)
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

	t = bpf_task_storage_get(&tls_pending, bpf_get_current_task_btf(), 0, 0);
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
	val = key.fd >= 0 ? bpf_map_lookup_elem(&conns, &key) : NULL;
	if (!val) {
		lost__inc(VIGIL_LOST_TLS_NO_SOCKET);
		return 0;
	}
	t->emitted = 1;
	tls__emit(val, key.fd, t->buf, got > 0xffffffffu ? 0xffffffffu : (__u32)got,
		  op == VIGIL_TLS_WRITE ? VIGIL_DIR_EGRESS : VIGIL_DIR_INGRESS, t->lib);
	return 0;
}

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

static __always_inline void io__exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct vigil_io_args *pending, args;
	struct vigil_conn_value *val;
	struct vigil_conn_key key;
	struct vigil_data_event *e;
	__u32 cpu, want, captured;
	__u64 offset;

	pending = bpf_task_storage_get(&pending_io, bpf_get_current_task_btf(), 0, 0);
	if (!pending || pending->direction == 0)
		return;
	args = *pending;
	pending->direction = 0; /* consumed */
	if (ret <= 0)
		return;
	key.pid = pid_tgid >> 32;
	key.fd = args.fd;
	val = bpf_map_lookup_elem(&conns, &key);
	if (!val)
		return;
	if (args.tls_write) {
		tls__write_done(val, args.fd);
		return;
	}
	offset = __sync_fetch_and_add(args.direction == VIGIL_DIR_EGRESS ? &val->tx_bytes : &val->rx_bytes,
				      (__u64)ret);
	if (l7__skip(val->l7))
		return;
	/* The agent is behind: drop here, before paying for the copy. The offset
	 * above already moved, so user space sees a gap, never spliced streams. */
	if (val->l7 != VIGIL_L7_UNKNOWN &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + sizeof(struct vigil_data_event) >
		    bpf_ringbuf_query(&events, BPF_RB_RING_SIZE)) {
		lost__inc(VIGIL_LOST_DATA_RINGBUF);
		return;
	}
	want = ret < capture_bytes ? ret : capture_bytes;
	if (want > VIGIL_MAX_CAPTURE)
		want = VIGIL_MAX_CAPTURE;
	/* Most API messages are small: copy them straight into the ring. */
	if (args.buf != 0 && args.iovcnt == 0 && want <= VIGIL_SMALL_PAYLOAD) {
		io__emit_small(val, &args, offset, ret, want);
		return;
	}
	cpu = bpf_get_smp_processor_id();
	e = bpf_map_lookup_elem(&data_scratch, &cpu);
	if (!e)
		return;

	if (args.buf == 0) {
		/* sendfile: the bytes never pass through user memory. An empty record
		 * keeps the stream's offsets honest (user space sees an explicit gap). */
		if (val->l7 == VIGIL_L7_UNKNOWN)
			return;
		captured = 0;
	} else if (args.iovcnt == 0) {
		if (bpf_probe_read_user(e->data, want, (void *)args.buf) != 0)
			return;
		captured = want;
	} else {
		captured = io__copy_iov(e, args.buf, args.iovcnt, want);
	}
	if (val->l7 == VIGIL_L7_UNKNOWN) {
		if (captured < 4)
			return;
		val->l7 = l7__classify(e->data, captured);
		if (l7__skip(val->l7))
			return;
	}

	event__fill_header_lite(&e->hdr, VIGIL_EV_DATA);
	e->conn_id = val->conn_id;
	e->offset = offset;
	e->length = ret;
	e->captured = captured;
	e->fd = args.fd;
	e->direction = args.direction;
	e->role = val->tuple.role;
	e->l7 = val->l7;
	e->tls = 0;
	if (captured > VIGIL_MAX_CAPTURE)
		return;
	if (bpf_ringbuf_output(&events, e, offsetof(struct vigil_data_event, data) + captured,
			       event__wakeup_flags()) != 0)
		lost__inc(VIGIL_LOST_DATA_RINGBUF);
}


#define IO_ENTER_FLAT(name, direction)                                             \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp__syscalls__sys_enter_##name(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                           \
		io__enter((__s32)ctx->args[0], ctx->args[1], 0, direction);         \
		return 0;                                                           \
	}
#define IO_ENTER_VEC(name, direction)                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp__syscalls__sys_enter_##name(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                           \
		io__enter((__s32)ctx->args[0], ctx->args[1], ctx->args[2], direction); \
		return 0;                                                           \
	}
#define IO_ENTER_MSG(name, direction)                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                 \
	int tp__syscalls__sys_enter_##name(struct trace_event_raw_sys_enter *ctx)   \
	{                                                                           \
		io__enter_msg((__s32)ctx->args[0], ctx->args[1], direction);        \
		return 0;                                                           \
	}
#define IO_EXIT(name)                                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                  \
	int tp__syscalls__sys_exit_##name(struct trace_event_raw_sys_exit *ctx)     \
	{                                                                           \
		io__exit(ctx->ret);                                                 \
		return 0;                                                           \
	}

IO_ENTER_FLAT(write, VIGIL_DIR_EGRESS)
IO_EXIT(write)
IO_ENTER_FLAT(sendto, VIGIL_DIR_EGRESS)
IO_EXIT(sendto)
IO_ENTER_VEC(writev, VIGIL_DIR_EGRESS)
IO_EXIT(writev)
IO_ENTER_MSG(sendmsg, VIGIL_DIR_EGRESS)
IO_EXIT(sendmsg)
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int tp__syscalls__sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	io__enter((__s32)ctx->args[0], 0, 0, VIGIL_DIR_EGRESS); /* out_fd; no buffer */
	return 0;
}
IO_EXIT(sendfile64)
IO_ENTER_FLAT(read, VIGIL_DIR_INGRESS)
IO_EXIT(read)
/* MSG_PEEK reads bytes that the next read returns again: not stream progress. */
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int tp__syscalls__sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	io__enter((__s32)ctx->args[0], ctx->args[1], 0, VIGIL_DIR_INGRESS);
	return 0;
}
IO_EXIT(recvfrom)
IO_ENTER_VEC(readv, VIGIL_DIR_INGRESS)
IO_EXIT(readv)
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int tp__syscalls__sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] & MSG_PEEK)
		return 0;
	io__enter_msg((__s32)ctx->args[0], ctx->args[1], VIGIL_DIR_INGRESS);
	return 0;
}
IO_EXIT(recvmsg)
