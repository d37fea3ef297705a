/* bench/: counts the hits of uprobes at given offsets — the counting peer for
 * sites inside a function, which Debian's bpftrace 0.17 cannot attach to (no
 * offset support). Same work per hit as bpftrace's count(): one per-CPU slot. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("uprobe")
int uprobe__count(struct pt_regs *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&hits, &key);

	if (n)
		*n += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
