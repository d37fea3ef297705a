/* DNS learning: answers arriving on the host, before the client reads them,
 * teach the kernel which addresses a policy's FQDN patterns stand for, in the
 * network namespace of the socket that asked. Only an answer to a query that
 * socket sent counts: same id, same question, from the server it was sent to
 * (security review F7: any datagram from port 53 used to teach the whole host). */
#ifndef VIGIL_EGRESS_DNS_BPF_H
#define VIGIL_EGRESS_DNS_BPF_H

#include "lib/consts.bpf.h"
#include "lib/event.bpf.h"
#include "egress/maps.bpf.h"

/* ---- DNS learning --------------------------------------------------------------- */

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Remembers that key->addr answers to the matched patterns for ttl seconds. */
static __always_inline void learn(const struct vigil_eg_dns_key *key, const struct dns_scratch *s, int nmatched,
				  __u32 ttl)
{
	struct vigil_eg_dns_entry fresh = {};
	struct vigil_eg_dns_entry *e = bpf_map_lookup_elem(&eg_dns, key);
	if (!e) {
		bpf_map_update_elem(&eg_dns, key, &fresh, BPF_NOEXIST);
		e = bpf_map_lookup_elem(&eg_dns, key);
		if (!e) {
			lost__inc(&eg_lost, VIGIL_EG_LOST_DNS);
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
	__u64 netns;    /* of the socket that asked */
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
	struct vigil_eg_dns_key key = { .netns = w->netns };
	if (type == 1 && rdlen == 4) {
		key.addr[10] = key.addr[11] = 0xff;
		if (bpf_skb_load_bytes(w->skb, w->off, &key.addr[12], 4))
			return 1;
		learn(&key, w->s, w->nmatched, ttl);
	} else if (type == 28 && rdlen == 16) {
		if (bpf_skb_load_bytes(w->skb, w->off, key.addr, 16))
			return 1;
		learn(&key, w->s, w->nmatched, ttl);
	}
	w->off += rdlen;
	return 0;
}

/* ---- the datagram: addresses and ports, DNS header, question ------------------ */

/* A UDP datagram's addresses (IPv4 as IPv4-mapped) and ports, host order. */
struct udp_dgram {
	__u32 l4;
	__u8 src[16];
	__u8 dst[16];
	__u16 sport, dport;
};

static __always_inline int udp_of(struct __sk_buff *skb, struct udp_dgram *d)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl, proto;
		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 9, &proto, 1))
			return 0;
		if (proto != IPPROTO_UDP)
			return 0;
		d->l4 = (vihl & 0x0f) * 4;
		d->src[10] = d->src[11] = d->dst[10] = d->dst[11] = 0xff;
		if (bpf_skb_load_bytes(skb, 12, &d->src[12], 4) || bpf_skb_load_bytes(skb, 16, &d->dst[12], 4))
			return 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 next;
		if (bpf_skb_load_bytes(skb, 6, &next, 1) || next != IPPROTO_UDP)
			return 0;
		d->l4 = 40;
		if (bpf_skb_load_bytes(skb, 8, d->src, 16) || bpf_skb_load_bytes(skb, 24, d->dst, 16))
			return 0;
	} else {
		return 0;
	}
	__u16 ports[2];
	if (bpf_skb_load_bytes(skb, d->l4, ports, 4))
		return 0;
	d->sport = bpf_ntohs(ports[0]);
	d->dport = bpf_ntohs(ports[1]);
	return 1;
}

static __always_inline int same_addr(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

struct dns_header {
	__u16 id, flags, qd, an, ns, ar;
};

/* The question of the message at `off`: its name into the scratch, the hash of
 * the whole name in w->hash, the policy patterns it matches in w->s->matched.
 * 0 when it is not one question of a name some policy names. */
static __always_inline int dns_question(struct dns_walk *w)
{
	w->s = bpf_map_lookup_elem(&eg_dns_scratch, &(__u32){ 0 });
	if (!w->s)
		return 0;
	w->hash = VIGIL_EG_HASH_SEED;
	bpf_loop(128, qname_step, w, 0);
	if (w->failed || !w->len)
		return 0;
	w->off += 4; /* QTYPE, QCLASS */
	bpf_loop(w->len, hash_step, w, 0);
	return w->nmatched > 0;
}

/* The DNS state of the socket a datagram belongs to (made at its connect or
 * sendmsg to a DNS port), or NULL. */
static __always_inline struct dns_sock *dns_sock_of(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return NULL;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&eg_dns_socks, sk, 0, 0);
}

/* connect(2) or sendmsg(2) to a DNS port: the socket gets its DNS state, which
 * names its network namespace (what the answers it gets are learnt for). */
static __always_inline void dns__note_socket(struct bpf_sock_addr *ctx, __u16 port)
{
	if (!bpf_map_lookup_elem(&eg_dns_ports, &port))
		return;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return;
	struct dns_sock *ds = bpf_sk_storage_get(&eg_dns_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (ds)
		ds->netns = bpf_get_netns_cookie(ctx);
}

/* A query leaving a socket with DNS state: remembered (its id, question and
 * server) in the free or oldest slot, when its name is one a policy names. */
static __always_inline void dns__note_query(struct __sk_buff *skb, const struct udp_dgram *d, __u32 gen)
{
	struct dns_sock *ds = dns_sock_of(skb);
	if (!ds)
		return;
	struct dns_header hdr;
	if (bpf_skb_load_bytes(skb, d->l4 + 8, &hdr, sizeof(hdr)))
		return;
	__u16 flags = bpf_ntohs(hdr.flags);
	if ((flags & 0x8000) || (flags & 0x7800) || bpf_ntohs(hdr.qd) != 1)
		return; /* an answer, not a standard query, or not one question */
	struct dns_walk w = { .skb = skb, .off = d->l4 + 8 + sizeof(hdr), .gen = gen };
	if (!dns_question(&w))
		return;
	__u64 now = bpf_ktime_get_boot_ns();
	int slot = 0;
	NO_UNROLL
	for (int i = 1; i < VIGIL_EG_DNS_QUERIES; i++)
		if (ds->q[i].expires_ns < ds->q[slot].expires_ns)
			slot = i;
	slot &= VIGIL_EG_DNS_QUERIES - 1;
	struct dns_query *q = &ds->q[slot];
	q->expires_ns = now + VIGIL_EG_DNS_QUERY_NS;
	q->qhash = w.hash;
	__builtin_memcpy(q->server, d->dst, 16);
	q->port = d->dport;
	q->id = hdr.id;
}

/* Parses one DNS answer datagram and learns the A/AAAA records of its question,
 * when it answers a query its socket sent (same id, question and server). The
 * answers of a CNAME chain all belong to the question, so the chain needs no
 * name decoding. */
static __always_inline void dns__learn_answer(struct __sk_buff *skb, const struct udp_dgram *d, __u32 gen,
					      __u32 min_ttl)
{
	struct dns_header hdr;
	if (bpf_skb_load_bytes(skb, d->l4 + 8, &hdr, sizeof(hdr)))
		return;
	__u16 flags = bpf_ntohs(hdr.flags);
	if (!(flags & 0x8000) || (flags & 0x000f) || bpf_ntohs(hdr.qd) != 1 || !hdr.an)
		return;
	struct dns_walk w = {
		.skb = skb,
		.off = d->l4 + 8 + sizeof(hdr),
		.gen = gen,
		.min_ttl = min_ttl,
		.ancount = bpf_ntohs(hdr.an),
	};
	if (!dns_question(&w))
		return;
	struct dns_sock *ds = dns_sock_of(skb);
	__u64 now = bpf_ktime_get_boot_ns();
	int found = -1;
	if (ds) {
		NO_UNROLL
		for (int i = 0; i < VIGIL_EG_DNS_QUERIES; i++) {
			struct dns_query *q = &ds->q[i];
			if (q->id == hdr.id && q->port == d->sport && q->qhash == w.hash && q->expires_ns > now &&
			    same_addr(q->server, d->src)) {
				found = i;
				break;
			}
		}
	}
	if (found < 0 || !ds) {
		lost__inc(&eg_lost, VIGIL_EG_DNS_UNSOLICITED);
		return;
	}
	ds->q[found & (VIGIL_EG_DNS_QUERIES - 1)].expires_ns = 0; /* answered */
	w.netns = ds->netns;
	bpf_loop(32, answer_step, &w, 0);
}

#endif
