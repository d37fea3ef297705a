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
#include "egress/judge.bpf.h"
#include "egress/dns.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup/connect4")
int eg_connect4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/connect6")
int eg_connect6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

SEC("cgroup/sendmsg4")
int eg_sendmsg4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/sendmsg6")
int eg_sendmsg6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

SEC("cgroup_skb/ingress")
int eg_dns_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct vigil_eg_state *st = bpf_map_lookup_elem(&eg_state, &zero);
	if (!st || !st->enabled)
		return 1;
	__u32 l4;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl, proto;
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1))
			return 1;
		if (proto != IPPROTO_UDP)
			return 1;
		l4 = (vihl & 0x0f) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 next;
		if (bpf_skb_load_bytes(skb, 6, &next, 1) || next != IPPROTO_UDP)
			return 1;
		l4 = 40;
	} else {
		return 1;
	}
	__u16 sport;
	if (bpf_skb_load_bytes(skb, l4, &sport, 2))
		return 1;
	__u16 port = bpf_ntohs(sport);
	if (!bpf_map_lookup_elem(&eg_dns_ports, &port))
		return 1;
	parse_dns(skb, l4 + 8, st->active_gen & 1, st->dns_min_ttl_s);
	return 1; /* learning only: the answer is never dropped */
}
