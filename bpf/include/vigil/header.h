/* The process header every Vigil event starts with (observe and egress alike),
 * and the layout-assert macro of the ABI headers. Plain C, both sides. */
#ifndef VIGIL_HEADER_H
#define VIGIL_HEADER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Layouts are asserted where they are declared, so clang (BPF) and g++ (agent)
 * both refuse a drift: a pinned map or a ring record read with another layout
 * would decode garbage, not fail. */
#ifdef __cplusplus
#define VIGIL_ABI_ASSERT(cond) static_assert(cond, #cond)
#else
#define VIGIL_ABI_ASSERT(cond) _Static_assert(cond, #cond)
#endif
#define VIGIL_OFFSET(type, field) __builtin_offsetof(type, field)

#define VIGIL_COMM_LEN 16

enum vigil_event_type {
	VIGIL_EV_EXEC = 1,
	VIGIL_EV_FORK = 2,
	VIGIL_EV_EXIT = 3,
	VIGIL_EV_CONN_OPEN = 4,
	VIGIL_EV_CONN_CLOSE = 5,
	VIGIL_EV_DATA = 6,
	VIGIL_EV_EGRESS = 7, /* a connect judged by the egress programs (egress_abi.h) */
};

/* Who did it and when; `pid` is the thread-group id (user-space pid). */
struct vigil_event_header {
	__u64 ts_ns;     /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id; /* cgroup v2 id of the task */
	__u32 type;      /* enum vigil_event_type */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	char comm[VIGIL_COMM_LEN];
};
VIGIL_ABI_ASSERT(sizeof(struct vigil_event_header) == 56);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_event_header, type) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_event_header, uid) == 32);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_event_header, comm) == 40);

#endif /* VIGIL_HEADER_H */
