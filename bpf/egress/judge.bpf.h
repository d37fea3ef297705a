/* Judging a connect: which policies select the calling process, whether a
 * destination table of one of them allows the address and port, and the
 * verdict event. */
#ifndef VIGIL_EGRESS_JUDGE_BPF_H
#define VIGIL_EGRESS_JUDGE_BPF_H

#include "lib/consts.bpf.h"
#include "lib/event.bpf.h"
#include "egress/maps.bpf.h"
#include "egress/dns.bpf.h"

/* ---- selection: which policies select the calling process ------------------ */

static __always_inline __u64 lookup_mask(void *map, void *key)
{
	__u64 *m = bpf_map_lookup_elem(map, key);
	return m ? *m : 0;
}

static __always_inline __u64 selected_policies(const struct vigil_eg_gen *g, __u32 gen)
{
	__u64 want = g->active;

	if (want & ~g->any_uid) {
		struct vigil_eg_uid_key uk = { .gen = gen, .uid = (__u32)bpf_get_current_uid_gid() };
		want &= lookup_mask(&eg_uids, &uk) | g->any_uid;
	}
	if (want & ~g->any_bin) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file *exe = BPF_CORE_READ(task, mm, exe_file);
		__u64 m = 0;
		if (exe) {
			struct inode *inode = BPF_CORE_READ(exe, f_inode);
			struct vigil_eg_bin_key bk = {
				.gen = gen,
				.dev = BPF_CORE_READ(inode, i_sb, s_dev),
				.ino = BPF_CORE_READ(inode, i_ino),
			};
			m = lookup_mask(&eg_bins, &bk);
		}
		want &= m | g->any_bin;
	}
	if (want & ~g->any_cgroup) {
		/* A cgroup selector covers the cgroup it names and all below it. */
		__u64 m = 0;
		struct vigil_eg_cgroup_key ck = { .gen = gen };
		NO_UNROLL
		for (int level = 0; level < VIGIL_EG_CGROUP_DEPTH; level++) {
			ck.cgroup_id = bpf_get_current_ancestor_cgroup_id(level);
			if (!ck.cgroup_id)
				break;
			m |= lookup_mask(&eg_cgroups, &ck);
		}
		want &= m | g->any_cgroup;
	}
	return want;
}

/* ---- destination tables ------------------------------------------------------ */

/* The rule of `p` allowing (port, proto bit), or -1. */
static __always_inline int ports_allow(const struct vigil_eg_ports *p, __u16 port, __u8 proto)
{
	NO_UNROLL
	for (int i = 0; i < VIGIL_EG_PORT_RANGES; i++) {
		if (i >= p->n)
			break;
		const struct vigil_eg_port_range *r = &p->r[i];
		if (port >= r->first && port <= r->last && (r->protos & proto))
			return r->rule;
	}
	return -1;
}

struct judgement {
	__u64 netns; /* of the calling socket: learnt names are per namespace */
	__u8 addr[16];
	__u16 port;
	__u8 proto_bit;
	__u32 gen;
	__u64 selected;
	struct vigil_eg_dns_entry *dns;
	__u64 now;
	/* out */
	int policy;
	int rule;
	__u64 fqdn_hash;
};

/* Whether policy `i`'s ports `p` allow the destination; records the reason. */
static __always_inline bool allows(struct judgement *j, const struct vigil_eg_ports *p, __u32 i)
{
	int rule = ports_allow(p, j->port, j->proto_bit);

	if (rule < 0)
		return false;
	j->policy = i;
	j->rule = rule;
	return true;
}

/* bpf_loop callbacks: each is verified once, however many policies there are. */
static long cidr_step(__u32 i, void *ctx)
{
	struct judgement *j = ctx;
	if (!(j->selected >> i))
		return 1;
	if (!((j->selected >> i) & 1))
		return 0;
	struct vigil_eg_cidr_key key = { .prefixlen = 32 + 128, .gen = (__u8)j->gen, .policy = (__u8)i };
	__builtin_memcpy(key.addr, j->addr, 16);
	struct vigil_eg_ports *p = bpf_map_lookup_elem(&eg_cidrs, &key);
	return p && allows(j, p, i);
}

/* Step n * 64 + i: learnt name n of the address, policy i. */
static long fqdn_step(__u32 step, void *ctx)
{
	struct judgement *j = ctx;
	__u32 n = step / VIGIL_EG_MAX_POLICIES, i = step % VIGIL_EG_MAX_POLICIES;
	if (n >= VIGIL_EG_DNS_NAMES || !((j->selected >> i) & 1))
		return 0;
	__u64 hash = j->dns->hash[n];
	if (!hash || j->dns->expires_ns[n] < j->now)
		return 0;
	struct vigil_eg_fqdn_ports_key key = { .gen = j->gen, .policy = i, .hash = hash };
	struct vigil_eg_ports *p = bpf_map_lookup_elem(&eg_fqdn_ports, &key);
	if (!p || !allows(j, p, i))
		return 0;
	j->fqdn_hash = hash;
	return 1;
}

static __always_inline int allowed_by_cidr(struct judgement *j)
{
	j->rule = -1;
	bpf_loop(VIGIL_EG_MAX_POLICIES, cidr_step, j, 0);
	return j->rule >= 0;
}

static __always_inline int allowed_by_fqdn(struct judgement *j)
{
	struct vigil_eg_dns_key key = { .netns = j->netns };
	__builtin_memcpy(key.addr, j->addr, 16);
	j->dns = bpf_map_lookup_elem(&eg_dns, &key);
	if (!j->dns)
		return 0;
	j->now = bpf_ktime_get_boot_ns();
	j->rule = -1;
	bpf_loop(VIGIL_EG_DNS_NAMES * VIGIL_EG_MAX_POLICIES, fqdn_step, j, 0);
	return j->rule >= 0;
}

static __always_inline void report(const struct judgement *j, __u8 verdict, __u8 proto)
{
	struct vigil_eg_event *ev = bpf_ringbuf_reserve(&eg_events, sizeof(*ev), 0);
	if (!ev) {
		lost__inc(&eg_lost, VIGIL_EG_LOST_VERDICTS);
		return;
	}
	event__fill_header(&ev->hdr, VIGIL_EV_EGRESS);
	ev->fqdn_hash = j->fqdn_hash;
	ev->verdict = verdict;
	ev->gen = (__u8)j->gen;
	ev->policy = (__u8)j->policy;
	ev->proto = proto;
	ev->rule = (__u16)j->rule;
	ev->port = j->port;
	__builtin_memcpy(ev->addr, j->addr, 16);
	/* Denies wake the agent at once; allows ride along with the next wakeup. */
	bpf_ringbuf_submit(ev, verdict == VIGIL_EG_ALLOW ? BPF_RB_NO_WAKEUP : 0);
}

/* 1: let the call proceed, 0: refuse it (EPERM). */
static __always_inline int judge(struct bpf_sock_addr *ctx, struct judgement *j, __u8 proto)
{
	__u32 zero = 0;
	struct vigil_eg_state *st = bpf_map_lookup_elem(&eg_state, &zero);
	if (!st || !st->enabled)
		return 1;
	dns__note_socket(ctx, j->port);
	j->netns = bpf_get_netns_cookie(ctx);
	j->gen = st->active_gen & 1;
	struct vigil_eg_gen *g = bpf_map_lookup_elem(&eg_gens, &j->gen);
	if (!g || !g->active)
		return 1;
	j->selected = selected_policies(g, j->gen);
	if (!j->selected)
		return 1; /* no policy selects this process: unrestricted */

	j->proto_bit = proto == IPPROTO_UDP ? VIGIL_EG_PROTO_UDP : VIGIL_EG_PROTO_TCP;
	j->policy = 0;
	j->fqdn_hash = 0;
	if (allowed_by_cidr(j) || allowed_by_fqdn(j)) {
		report(j, VIGIL_EG_ALLOW, proto);
		return 1;
	}
	j->rule = VIGIL_EG_RULE_NONE;
	/* Denied by the union of allows. An enforcing policy makes it real. */
	__u64 enforcing = j->selected & g->enforce;
	__u64 decider = enforcing ? enforcing : j->selected;
	NO_UNROLL
	for (int i = 0; i < VIGIL_EG_MAX_POLICIES; i++) {
		if ((decider >> i) & 1) {
			j->policy = i;
			break;
		}
	}
	report(j, enforcing ? VIGIL_EG_DENY : VIGIL_EG_WOULD_DENY, proto);
	return enforcing ? 0 : 1;
}

static __always_inline __u8 sock_proto(struct bpf_sock_addr *ctx)
{
	return ctx->protocol == IPPROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP;
}

static __always_inline int judge4(struct bpf_sock_addr *ctx)
{
	struct judgement j = {};
	__u32 ip = ctx->user_ip4; /* network order */
	j.addr[10] = 0xff;
	j.addr[11] = 0xff;
	__builtin_memcpy(&j.addr[12], &ip, 4);
	j.port = bpf_ntohs((__u16)ctx->user_port);
	return judge(ctx, &j, sock_proto(ctx));
}

static __always_inline int judge6(struct bpf_sock_addr *ctx)
{
	struct judgement j = {};
	/* IPv4-mapped destinations are already in the IPv4 form of the tables. */
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	__builtin_memcpy(&j.addr[0], &w0, 4);
	__builtin_memcpy(&j.addr[4], &w1, 4);
	__builtin_memcpy(&j.addr[8], &w2, 4);
	__builtin_memcpy(&j.addr[12], &w3, 4);
	j.port = bpf_ntohs((__u16)ctx->user_port);
	return judge(ctx, &j, sock_proto(ctx));
}

#endif
