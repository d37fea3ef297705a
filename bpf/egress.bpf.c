// SPDX-License-Identifier: GPL-2.0
/* Egress enforcement: judges every connect(2) and unconnected UDP send against
 * the compiled policy tables (vigil/egress_abi.h), and learns DNS names from
 * answers arriving on the host before the client reads them.
 *
 * The programs, links and maps are pinned: they keep enforcing while the agent
 * is down. Nothing here depends on the agent running. This file holds the
 * programs; their helpers are in bpf/egress/. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "egress/dns.bpf.h"
#include "egress/judge.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup/connect4")
int eg_connect4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/connect6")
int eg_connect6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

SEC("cgroup/sendmsg4")
int eg_sendmsg4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/sendmsg6")
int eg_sendmsg6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

/* DNS answers: learnt when they answer a query of their socket (egress/dns.bpf.h). */
SEC("cgroup_skb/ingress")
int eg_dns_ingress(struct __sk_buff *skb)
{
	struct vigil_eg_state *st = bpf_map_lookup_elem(&eg_state, &(__u32){ 0 });
	if (!st || !st->enabled)
		return 1;
	struct udp_dgram d = {};
	if (!udp_of(skb, &d) || !bpf_map_lookup_elem(&eg_dns_ports, &d.sport))
		return 1;
	dns__learn_answer(skb, &d, st->active_gen & 1, st->dns_min_ttl_s);
	return 1; /* learning only: the answer is never dropped */
}

/* DNS queries: remembered, so that only their answers are learnt. */
SEC("cgroup_skb/egress")
int eg_dns_egress(struct __sk_buff *skb)
{
	struct vigil_eg_state *st = bpf_map_lookup_elem(&eg_state, &(__u32){ 0 });
	if (!st || !st->enabled)
		return 1;
	struct udp_dgram d = {};
	if (!udp_of(skb, &d) || !bpf_map_lookup_elem(&eg_dns_ports, &d.dport))
		return 1;
	dns__note_query(skb, &d, st->active_gen & 1);
	return 1; /* never dropped */
}
