// SPDX-License-Identifier: GPL-2.0
/* Egress enforcement: judges every connect(2) and unconnected UDP send against
 * the compiled policy tables (vigil/egress_abi.h), and learns DNS names from
 * answers arriving on the host before the client reads them.
 *
 * The programs, links and maps are pinned: they keep enforcing while the agent
 * is down. Nothing here depends on the agent running. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "vigil/egress_abi.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 egress_abi_version = VIGIL_EGRESS_ABI_VERSION;

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define NS_PER_SEC 1000000000ULL
/* Loops stay loops: unrolled, the nested tables exceed the verifier's jump history. */
#define NO_UNROLL _Pragma("clang loop unroll(disable)")

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_eg_state);
} eg_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct vigil_eg_gen);
} eg_gens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_eg_bin_key);
	__type(value, __u64);
} eg_bins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_eg_cgroup_key);
	__type(value, __u64);
} eg_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_eg_uid_key);
	__type(value, __u64);
} eg_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__type(key, struct vigil_eg_cidr_key);
	__type(value, struct vigil_eg_ports);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} eg_cidrs SEC(".maps");

/* Pattern hash -> the policies that name it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_eg_fqdn_key);
	__type(value, __u64);
} eg_fqdns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_eg_fqdn_ports_key);
	__type(value, struct vigil_eg_ports);
} eg_fqdn_ports SEC(".maps");

/* Address -> pattern hashes its DNS names matched (learnt, with expiry). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u8[16]);
	__type(value, struct vigil_eg_dns_entry);
} eg_dns SEC(".maps");

/* UDP source ports whose datagrams are DNS answers (53 by default). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} eg_dns_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} eg_events SEC(".maps");

/* [0] verdict events lost (ring full), [1] DNS answers not learnt (table full or malformed). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} eg_lost SEC(".maps");

struct dns_scratch {
	char name[VIGIL_EG_DNS_NAME_LEN + 64];
	__u64 matched[VIGIL_EG_DNS_NAMES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} eg_dns_scratch SEC(".maps");

static __always_inline void lost_inc(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&eg_lost, &slot);
	if (n)
		*n += 1;
}

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
	if (!p)
		return 0;
	int rule = ports_allow(p, j->port, j->proto_bit);
	if (rule < 0)
		return 0;
	j->policy = i;
	j->rule = rule;
	return 1;
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
	if (!p)
		return 0;
	int rule = ports_allow(p, j->port, j->proto_bit);
	if (rule < 0)
		return 0;
	j->policy = i;
	j->rule = rule;
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
	j->dns = bpf_map_lookup_elem(&eg_dns, j->addr);
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
		lost_inc(0);
		return;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	ev->ts_ns = bpf_ktime_get_boot_ns();
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->fqdn_hash = j->fqdn_hash;
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->verdict = verdict;
	ev->gen = (__u8)j->gen;
	ev->policy = (__u8)j->policy;
	ev->proto = proto;
	ev->rule = (__u16)j->rule;
	ev->port = j->port;
	__builtin_memcpy(ev->addr, j->addr, 16);
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	/* Denies wake the agent at once; allows ride along with the next wakeup. */
	bpf_ringbuf_submit(ev, verdict == VIGIL_EG_ALLOW ? BPF_RB_NO_WAKEUP : 0);
}

/* 1: let the call proceed, 0: refuse it (EPERM). */
static __always_inline int judge(struct judgement *j, __u8 proto)
{
	__u32 zero = 0;
	struct vigil_eg_state *st = bpf_map_lookup_elem(&eg_state, &zero);
	if (!st || !st->enabled)
		return 1;
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
	return judge(&j, sock_proto(ctx));
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
	return judge(&j, sock_proto(ctx));
}

SEC("cgroup/connect4")
int eg_connect4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/connect6")
int eg_connect6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

SEC("cgroup/sendmsg4")
int eg_sendmsg4(struct bpf_sock_addr *ctx) { return judge4(ctx); }

SEC("cgroup/sendmsg6")
int eg_sendmsg6(struct bpf_sock_addr *ctx) { return judge6(ctx); }

/* ---- DNS learning --------------------------------------------------------------- */

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Remembers that `addr` answers to pattern `hash` for ttl seconds. */
static __always_inline void learn(const __u8 *addr, const struct dns_scratch *s, int nmatched, __u32 ttl)
{
	struct vigil_eg_dns_entry fresh = {};
	struct vigil_eg_dns_entry *e = bpf_map_lookup_elem(&eg_dns, addr);
	if (!e) {
		bpf_map_update_elem(&eg_dns, addr, &fresh, BPF_NOEXIST);
		e = bpf_map_lookup_elem(&eg_dns, addr);
		if (!e) {
			lost_inc(1);
			return;
		}
	}
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 expires = now + (__u64)ttl * NS_PER_SEC;
	NO_UNROLL
	for (int m = 0; m < VIGIL_EG_DNS_NAMES; m++) {
		if (m >= nmatched)
			break;
		__u64 hash = s->matched[m];
		/* Its own slot, else a free or expired one, else the soonest to expire. */
		int slot = -1, victim = 0;
		NO_UNROLL
		for (int n = 0; n < VIGIL_EG_DNS_NAMES; n++) {
			if (e->hash[n] == hash) {
				slot = n;
				break;
			}
			if (e->expires_ns[n] < e->expires_ns[victim])
				victim = n;
		}
		if (slot < 0)
			slot = victim;
		slot &= VIGIL_EG_DNS_NAMES - 1;
		if (e->hash[slot] != hash) {
			e->hash[slot] = hash;
			e->expires_ns[slot] = expires;
		} else if (e->expires_ns[slot] < expires) {
			e->expires_ns[slot] = expires;
		}
	}
}

struct dns_walk {
	struct __sk_buff *skb;
	struct dns_scratch *s;
	__u32 off;
	__u32 len;      /* of the dotted name */
	__u32 gen;
	__u32 min_ttl;
	__u32 ancount;
	int nmatched;
	__u64 hash;
	int failed;
};

/* One label of the question name into s->name; 1 ends the loop. */
static long qname_step(__u32 i, void *ctx)
{
	struct dns_walk *w = ctx;
	__u8 b;
	if (bpf_skb_load_bytes(w->skb, w->off, &b, 1))
		goto fail;
	w->off += 1;
	__u32 n = b;
	if (n == 0)
		return 1;
	if (n > 63)
		goto fail; /* compression in a question: not worth it */
	__u32 len = w->len;
	if (len) {
		if (len >= VIGIL_EG_DNS_NAME_LEN - 1)
			goto fail;
		w->s->name[len & (VIGIL_EG_DNS_NAME_LEN - 1)] = '.';
		len++;
	}
	if (len + n > VIGIL_EG_DNS_NAME_LEN - 1)
		goto fail;
	if (bpf_skb_load_bytes(w->skb, w->off, &w->s->name[len & (VIGIL_EG_DNS_NAME_LEN - 1)], n))
		goto fail;
	w->len = len + n;
	w->off += n;
	return 0;
fail:
	w->failed = 1;
	return 1;
}

/* Hashes the name backwards; at each label start looks up the pattern forms
 * (".suffix" for wildcards, the whole name for exact names). */
static long hash_step(__u32 k, void *ctx)
{
	struct dns_walk *w = ctx;
	__u32 i = w->len - 1 - k;
	if (i >= VIGIL_EG_DNS_NAME_LEN)
		return 1;
	__u8 c = lower(w->s->name[i]);
	w->hash = (w->hash ^ c) * VIGIL_EG_HASH_PRIME;
	if (c == '.' || i == 0) {
		struct vigil_eg_fqdn_key fk = { .gen = w->gen, .hash = w->hash };
		if (bpf_map_lookup_elem(&eg_fqdns, &fk) && w->nmatched < VIGIL_EG_DNS_NAMES) {
			w->s->matched[w->nmatched & (VIGIL_EG_DNS_NAMES - 1)] = w->hash;
			w->nmatched++;
		}
	}
	return 0;
}

/* Skips one label of a resource record's owner name; 1 at its end. */
static long skip_step(__u32 i, void *ctx)
{
	struct dns_walk *w = ctx;
	__u8 n;
	if (bpf_skb_load_bytes(w->skb, w->off, &n, 1)) {
		w->failed = 1;
		return 1;
	}
	if (n == 0) {
		w->off += 1;
		return 1;
	}
	if ((n & 0xc0) == 0xc0) {
		w->off += 2;
		return 1;
	}
	w->off += 1 + (n & 63);
	return 0;
}

/* One answer record: A and AAAA records are learnt for the matched patterns. */
static long answer_step(__u32 a, void *ctx)
{
	struct dns_walk *w = ctx;
	if (a >= w->ancount)
		return 1;
	bpf_loop(64, skip_step, w, 0);
	if (w->failed)
		return 1;
	struct {
		__u16 type, class;
		__u32 ttl;
		__u16 rdlen;
	} __attribute__((packed)) rr;
	if (bpf_skb_load_bytes(w->skb, w->off, &rr, sizeof(rr)))
		return 1;
	w->off += sizeof(rr);
	__u16 type = bpf_ntohs(rr.type), rdlen = bpf_ntohs(rr.rdlen);
	__u32 ttl = bpf_ntohl(rr.ttl);
	if (ttl < w->min_ttl)
		ttl = w->min_ttl;
	__u8 addr[16] = {};
	if (type == 1 && rdlen == 4) {
		addr[10] = addr[11] = 0xff;
		if (bpf_skb_load_bytes(w->skb, w->off, &addr[12], 4))
			return 1;
		learn(addr, w->s, w->nmatched, ttl);
	} else if (type == 28 && rdlen == 16) {
		if (bpf_skb_load_bytes(w->skb, w->off, addr, 16))
			return 1;
		learn(addr, w->s, w->nmatched, ttl);
	}
	w->off += rdlen;
	return 0;
}

/* Parses one DNS answer datagram at `off` (the DNS header) and learns the
 * A/AAAA records of a question name some policy names. Answers of a CNAME
 * chain all belong to the question, so the chain needs no name decoding. */
static __always_inline void parse_dns(struct __sk_buff *skb, __u32 off, __u32 gen, __u32 min_ttl)
{
	struct {
		__u16 id, flags, qd, an, ns, ar;
	} hdr;
	if (bpf_skb_load_bytes(skb, off, &hdr, sizeof(hdr)))
		return;
	__u16 flags = bpf_ntohs(hdr.flags);
	if (!(flags & 0x8000) || (flags & 0x000f) || bpf_ntohs(hdr.qd) != 1 || !hdr.an)
		return;
	__u32 zero = 0;
	struct dns_walk w = {
		.skb = skb,
		.s = bpf_map_lookup_elem(&eg_dns_scratch, &zero),
		.off = off + sizeof(hdr),
		.gen = gen,
		.min_ttl = min_ttl,
		.ancount = bpf_ntohs(hdr.an),
		.hash = VIGIL_EG_HASH_SEED,
	};
	if (!w.s)
		return;
	bpf_loop(128, qname_step, &w, 0);
	if (w.failed || !w.len)
		return;
	w.off += 4; /* QTYPE, QCLASS */
	bpf_loop(w.len, hash_step, &w, 0);
	if (!w.nmatched)
		return;
	bpf_loop(32, answer_step, &w, 0);
}

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
