/* The observation ABI of Vigil: every ring-buffer event and map key/value of
 * bpf/observe.bpf.c. Included by BOTH the BPF programs (after vmlinux.h) and the
 * C++ agent. Plain C, fixed-width types only; every layout is asserted here. */
#ifndef VIGIL_ABI_H
#define VIGIL_ABI_H

#include "header.h"

/* Bumped on any change to a struct or enum below. The BPF object carries it in
 * rodata and the agent refuses to load an object built against another version. */
#define VIGIL_ABI_VERSION 6

#define VIGIL_FILENAME_LEN 256
/* Most payload bytes one data event carries (capture.max_capture_bytes <= this). */
#define VIGIL_MAX_CAPTURE 16384

enum vigil_direction {
	VIGIL_DIR_EGRESS = 1,  /* written by the process */
	VIGIL_DIR_INGRESS = 2, /* read by the process */
};

/* What the kernel inferred a connection carries, from its first payload bytes. */
enum vigil_l7 {
	VIGIL_L7_UNKNOWN = 0,
	VIGIL_L7_HTTP1 = 1,
	VIGIL_L7_HTTP2 = 2, /* cleartext h2 preface */
	VIGIL_L7_OTHER = 3, /* payload is no longer copied */
	VIGIL_L7_TLS = 4,   /* TLS records: not copied; the library's plaintext may be */
};

/* TLS library calls the uprobes see (vigil_tls_args.op). */
enum vigil_tls_op {
	VIGIL_TLS_NONE = 0,
	VIGIL_TLS_WRITE = 1,
	VIGIL_TLS_READ = 2,
};

enum vigil_role {
	VIGIL_ROLE_UNKNOWN = 0, /* met mid-stream (inside a TLS call): user space decides */
	VIGIL_ROLE_CLIENT = 1,
	VIGIL_ROLE_SERVER = 2,
};

enum vigil_l4_proto {
	VIGIL_PROTO_TCP = 6,
	VIGIL_PROTO_UDP = 17,
};

/* Why a connection closed: the owner called close(2), or the process exited
 * with the socket still open (the kernel reports it at the group's exit). */
enum vigil_close_reason {
	VIGIL_CLOSE_SYSCALL = 1,
	VIGIL_CLOSE_EXIT = 2,
};

/* Lost-counter slots (per-CPU array, one __u64 per slot). */
enum vigil_lost_slot {
	VIGIL_LOST_RINGBUF = 0,   /* bpf_ringbuf_reserve failed */
	VIGIL_LOST_CONN_TABLE = 1, /* conns map full: connection not tracked */
	VIGIL_LOST_DATA_RINGBUF = 2, /* a payload record did not fit the ring buffer */
	VIGIL_LOST_TLS_NO_SOCKET = 3, /* TLS plaintext whose socket is unknown or untracked */
	VIGIL_LOST_CONN_QUOTA = 4, /* the socket owner's uid holds its share of conns: not tracked */
	VIGIL_LOST_SLOTS = 5,
};

struct vigil_exec_event {
	struct vigil_event_header hdr;
	__u32 old_tid; /* thread that called execve (may differ from pid) */
	__u32 filename_len;
	char filename[VIGIL_FILENAME_LEN]; /* as given to execve; may be relative */
};

/* A new process (threads are not reported). hdr is the parent. */
struct vigil_fork_event {
	struct vigil_event_header hdr;
	__u32 child_pid;
	__u32 _pad;
};

/* The whole thread group has exited. */
struct vigil_exit_event {
	struct vigil_event_header hdr;
	__s32 exit_code;
	__u32 _pad;
};

/* Addresses are in network byte order; IPv4 uses the first 4 bytes.
 * Ports are in host byte order. */
struct vigil_conn_tuple {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u16 family; /* AF_INET or AF_INET6 */
	__u8 proto;   /* enum vigil_l4_proto */
	__u8 role;    /* enum vigil_role */
};

struct vigil_conn_event {
	struct vigil_event_header hdr;
	__u64 conn_id; /* unique per loaded program set, shared by open and close */
	struct vigil_conn_tuple tuple;
	__s32 fd;
	__u32 close_reason; /* enum vigil_close_reason, on close */
	__u64 bytes_sent;   /* on close: TCP from tcp_sock, UDP from the syscalls seen */
	__u64 bytes_recv;
};

/* Payload moved by one read/write-family syscall on a tracked socket. Only
 * `captured` bytes of `data` are in the record; `length` is what the syscall
 * moved, and `offset` is where it starts in this direction's byte stream.
 * The header carries ts, type, pid and tid only (the rest is zero: the process
 * is known from the connection's open event and the process table). Records
 * of up to VIGIL_SMALL_RECORD bytes are written straight into the ring. */
#define VIGIL_SMALL_RECORD 512
struct vigil_data_event {
	struct vigil_event_header hdr;
	__u64 conn_id;
	__u64 offset;
	__u32 length;
	__u32 captured;
	__s32 fd;
	__u8 direction; /* enum vigil_direction */
	__u8 role;      /* enum vigil_role of the connection */
	__u8 l7;        /* enum vigil_l7 */
	__u8 tls;       /* 0: socket bytes; else plaintext from the TLS library the agent numbered so */
	char data[2 * VIGIL_MAX_CAPTURE]; /* twice the cap: lets the verifier bound iovec copies */
};

/* conns map: a socket fd of a process that Vigil tracks. */
struct vigil_conn_key {
	__u32 pid;
	__s32 fd;
};

struct vigil_conn_value {
	__u64 conn_id;
	__u64 sk; /* struct sock *, only ever read with bpf_probe_read_kernel */
	struct vigil_conn_tuple tuple;
	__u64 tx_bytes; /* stream offsets: payload bytes written / read so far */
	__u64 rx_bytes;
	__u64 tls_tx;   /* plaintext stream offsets, for TLS connections */
	__u64 tls_rx;
	__u32 l7;       /* enum vigil_l7 of the socket bytes (TLS records: OTHER) */
	__u8 tls;       /* TLS library number once plaintext was seen, else 0 */
	__u8 tls_l7;    /* enum vigil_l7 of the plaintext */
	__u16 _pad;
	__u32 uid;      /* charged to this uid's share of conns (see conn_uid_quota) */
	__u32 _pad2;
};

/* conn_filter: a counting filter in front of `conns`. Slot vigil_conn_filter_slot(pid,
 * fd) counts the entries the kernel put in `conns` whose key falls there; user space
 * sets the slot of each socket it seeds to VIGIL_CONN_FILTER_STICKY, a count the kernel's
 * decrements never bring to 0. A read or write of a file, a pipe or an untracked socket
 * finds 0 in one array access and skips the hash lookup. */
#define VIGIL_CONN_FILTER_BITS 16
#define VIGIL_CONN_FILTER_STICKY 0x40000000u
static inline __u32 vigil_conn_filter_slot(__u32 pid, __s32 fd)
{
	return ((pid * 0x9E3779B1u) ^ ((__u32)fd * 0x85EBCA77u)) >> (32 - VIGIL_CONN_FILTER_BITS);
}

/* The tracked socket fds of one process, so that its exit closes them without
 * walking the whole conns map. Slots hold fd + 1 (0: free). */
#define VIGIL_PID_FD_SLOTS 16
struct vigil_pid_fds {
	__s32 slots[VIGIL_PID_FD_SLOTS];
	__u32 overflow; /* more sockets than slots: exit walks conns */
	__u32 _pad;
};

/* A TLS library call in flight on a thread (task storage), from its entry
 * uprobe to the socket syscall it makes (which names the fd) and, for reads,
 * its return probe (which knows how many plaintext bytes there are). */
struct vigil_tls_args {
	__u64 ssl;     /* SSL * */
	__u64 buf;     /* plaintext buffer */
	__u64 out_len; /* size_t * of SSL_read_ex / SSL_write_ex, else 0 */
	__s32 fd;      /* -1 until a socket syscall inside the call names it */
	__u32 num;     /* SSL_write: bytes handed over */
	__u8 op;       /* enum vigil_tls_op */
	__u8 lib;      /* the agent's number for the library (attach cookie) */
	__u8 emitted;
	__u8 _pad;
	__s32 last_read_fd1; /* fd + 1 of the last tracked socket this thread read outside a TLS
			      * call (memory BIOs, e.g. Node.js: the read comes before SSL_read) */
};

/* ssl_fds map: which fd an SSL * was last seen using. */
struct vigil_ssl_key {
	__u32 pid;
	__u32 _pad;
	__u64 ssl;
};

VIGIL_ABI_ASSERT(sizeof(struct vigil_exec_event) == 56 + 8 + VIGIL_FILENAME_LEN);
VIGIL_ABI_ASSERT(sizeof(struct vigil_fork_event) == 64);
VIGIL_ABI_ASSERT(sizeof(struct vigil_exit_event) == 64);
VIGIL_ABI_ASSERT(sizeof(struct vigil_conn_tuple) == 40);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_conn_tuple, lport) == 32);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_conn_tuple, family) == 36);
VIGIL_ABI_ASSERT(sizeof(struct vigil_conn_event) == 56 + 8 + 40 + 8 + 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_conn_event, tuple) == 64);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_conn_event, bytes_sent) == 112);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_data_event, data) == 56 + 8 + 8 + 4 + 4 + 4 + 4);
VIGIL_ABI_ASSERT(sizeof(struct vigil_conn_key) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_conn_value) == 104);
VIGIL_ABI_ASSERT(sizeof(struct vigil_pid_fds) == 4 * VIGIL_PID_FD_SLOTS + 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_tls_args) == 40);
VIGIL_ABI_ASSERT(sizeof(struct vigil_ssl_key) == 16);

#endif /* VIGIL_ABI_H */
