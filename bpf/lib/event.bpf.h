/* Helpers every Vigil BPF program uses to report: the process header of an
 * event, and the per-CPU lost counters user space reads (one __u64 per slot). */
#ifndef VIGIL_EVENT_BPF_H
#define VIGIL_EVENT_BPF_H

#include "vigil/header.h"

/* `map` is a BPF_MAP_TYPE_PERCPU_ARRAY of __u64, `slot` one of its enum's values. */
static __always_inline void lost__inc(void *map, __u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(map, &slot);

	if (count)
		*count += 1;
}

/* Who is running now: the header of an event it causes. */
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

#endif
