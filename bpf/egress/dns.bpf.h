/* DNS learning: answers arriving on the host, before the client reads them,
 * teach the kernel which addresses a policy's FQDN patterns stand for. */
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

/* Remembers that `addr` answers to pattern `hash` for ttl seconds. */
static __always_inline void learn(const __u8 *addr, const struct dns_scratch *s, int nmatched, __u32 ttl)
{
	struct vigil_eg_dns_entry fresh = {};
	struct vigil_eg_dns_entry *e = bpf_map_lookup_elem(&eg_dns, addr);
	if (!e) {
		bpf_map_update_elem(&eg_dns, addr, &fresh, BPF_NOEXIST);
		e = bpf_map_lookup_elem(&eg_dns, addr);
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

#endif
