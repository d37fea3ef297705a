/* The configuration, counters and maps of the observation programs. */
#ifndef VIGIL_OBSERVE_MAPS_BPF_H
#define VIGIL_OBSERVE_MAPS_BPF_H

#include "vigil/abi.h"

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
#define VIGIL_CONNS_MAX 65536
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_CONNS_MAX);
	__type(key, struct vigil_conn_key);
	__type(value, struct vigil_conn_value);
} conns SEC(".maps");

/* The counting filter in front of `conns` (see vigil_conn_filter_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << VIGIL_CONN_FILTER_BITS);
	__type(key, __u32);
	__type(value, __u32);
} conn_filter SEC(".maps");

/* Entries of `conns` per uid (non-root): one user holding many sockets must not
 * fill the table and blind the host (security review F14). */
const volatile __u32 conn_uid_quota = VIGIL_CONNS_MAX / 4;
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __s64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} uid_conns SEC(".maps");

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

#endif
