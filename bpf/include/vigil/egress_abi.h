/* The egress-enforcement ABI: map keys and values the agent compiles policies
 * into, and the verdict events the kernel reports. Shared by bpf/egress.bpf.c
 * and the C++ agent (policy/ compiles into these; collectors/kernel/egress_enforcer.cc
 * writes them).
 *
 * These maps are pinned under bpffs and outlive the agent, so a layout change
 * must bump VIGIL_EGRESS_ABI_VERSION: the pin directory is versioned by it. */
#ifndef VIGIL_EGRESS_ABI_H
#define VIGIL_EGRESS_ABI_H

#include "header.h"

/* 2: verdict events carry the common process header.
 * 3: learnt names are per network namespace, and only from answers to queries
 *    this host's sockets sent (eg_dns_socks). */
#define VIGIL_EGRESS_ABI_VERSION 3

#define VIGIL_EG_MAX_POLICIES 64      /* policies are bits of a __u64 */
#define VIGIL_EG_PORT_RANGES 8        /* port ranges per (policy, destination) */
#define VIGIL_EG_CGROUP_DEPTH 16      /* ancestor levels checked for cgroup selectors */
#define VIGIL_EG_DNS_NAMES 4          /* policy names remembered per learnt address */
#define VIGIL_EG_DNS_NAME_LEN 256
#define VIGIL_EG_DNS_QUERIES 4        /* queries awaiting their answer, per socket */
#define VIGIL_EG_DNS_QUERY_NS (30ULL * 1000000000ULL) /* how long a query waits for its answer */
#define VIGIL_EG_RULE_LOOPBACK 0xffff /* the implicit allowLoopback rule */
#define VIGIL_EG_RULE_NONE 0xfffe     /* a deny: no rule allowed it */

/* Protocol bits of a port range. */
#define VIGIL_EG_PROTO_TCP 1
#define VIGIL_EG_PROTO_UDP 2

/* Slots of the per-CPU eg_lost array. */
enum vigil_eg_lost_slot {
	VIGIL_EG_LOST_VERDICTS = 0, /* eg_events full: a verdict was not reported */
	VIGIL_EG_LOST_DNS = 1,      /* a DNS answer was not learnt (eg_dns full) */
	VIGIL_EG_DNS_UNSOLICITED = 2, /* a DNS answer that answers no query of its socket: ignored */
	VIGIL_EG_LOST_SLOTS = 3,
};

enum vigil_eg_verdict {
	VIGIL_EG_ALLOW = 1,
	VIGIL_EG_DENY = 2,       /* an enforcing policy refused it: EPERM */
	VIGIL_EG_WOULD_DENY = 3, /* audit mode: allowed, reported */
};

/* One generation of compiled policies; the agent fills the inactive one, then
 * flips vigil_eg_state.active_gen, so a connect never sees half an update. */
struct vigil_eg_gen {
	__u64 active;    /* policies present in this generation */
	__u64 enforce;   /* ... in enforce mode */
	__u64 any_bin;   /* ... without a binaries selector */
	__u64 any_cgroup;/* ... without a cgroups selector */
	__u64 any_uid;   /* ... without a uids selector */
};

struct vigil_eg_state {
	__u32 active_gen; /* 0 or 1 */
	__u32 enabled;    /* 0: every connect is allowed and nothing reported */
	__u32 dns_min_ttl_s;
	__u32 pad;
};

struct vigil_eg_bin_key {
	__u32 gen;
	__u32 dev; /* kernel dev_t of the executable's superblock: MAJOR << 20 | MINOR */
	__u64 ino;
};

struct vigil_eg_cgroup_key {
	__u32 gen;
	__u32 pad;
	__u64 cgroup_id; /* cgroup v2 id (the directory's inode number) */
};

struct vigil_eg_uid_key {
	__u32 gen;
	__u32 uid;
};

/* LPM key: prefixlen counts the 32 bits of gen/policy/pad, then the address. */
struct vigil_eg_cidr_key {
	__u32 prefixlen;
	__u8 gen;
	__u8 policy;
	__u8 pad[2];
	__u8 addr[16]; /* IPv6; IPv4 as IPv4-mapped (::ffff:a.b.c.d) */
};

struct vigil_eg_port_range {
	__u16 first;
	__u16 last;
	__u8 protos; /* VIGIL_EG_PROTO_* bits */
	__u8 pad;
	__u16 rule;  /* egress[rule] of the policy, or VIGIL_EG_RULE_LOOPBACK */
};

/* Which ports a (policy, destination) allows. */
struct vigil_eg_ports {
	__u32 n;
	__u32 pad;
	struct vigil_eg_port_range r[VIGIL_EG_PORT_RANGES];
};

/* An FQDN pattern of some policy: exact "api.example.com" hashes the name,
 * "*.example.com" hashes ".example.com" (see VIGIL_EG_HASH_SEED below). */
struct vigil_eg_fqdn_key {
	__u32 gen;
	__u32 pad;
	__u64 hash;
};

struct vigil_eg_fqdn_ports_key {
	__u32 gen;
	__u32 policy;
	__u64 hash;
};

/* A learnt address, in the network namespace whose sockets asked for it: an
 * answer seen in one namespace says nothing about another's (a user's own
 * namespace can run any resolver it likes). */
struct vigil_eg_dns_key {
	__u64 netns;   /* bpf_get_netns_cookie */
	__u8 addr[16]; /* IPv4 as IPv4-mapped */
};

/* What DNS answers taught the kernel about one address: the pattern hashes its
 * names matched, each until its expiry (bpf_ktime_get_boot_ns). */
struct vigil_eg_dns_entry {
	__u64 hash[VIGIL_EG_DNS_NAMES];
	__u64 expires_ns[VIGIL_EG_DNS_NAMES];
};

/* A verdict for a selected process (ring buffer `eg_events`); hdr.type is VIGIL_EV_EGRESS. */
struct vigil_eg_event {
	struct vigil_event_header hdr;
	__u64 fqdn_hash; /* the pattern that allowed it, 0 if none */
	__u8 verdict;    /* enum vigil_eg_verdict */
	__u8 gen;
	__u8 policy;     /* index in the generation */
	__u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP */
	__u16 rule;
	__u16 port;      /* host order */
	__u8 addr[16];
};

/* Name hashing shared by the DNS program and the compiler: FNV-1a over the
 * lower-case name read from its LAST byte to its first, so that the hash of
 * every suffix falls out of one backward pass. */
#define VIGIL_EG_HASH_SEED 0xcbf29ce484222325ULL
#define VIGIL_EG_HASH_PRIME 0x100000001b3ULL

/* Pinned layouts: a change here must bump VIGIL_EGRESS_ABI_VERSION. */
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_gen) == 40);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_dns_key) == 24);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_state) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_state, dns_min_ttl_s) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_bin_key) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_bin_key, ino) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_cgroup_key) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_cgroup_key, cgroup_id) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_uid_key) == 8);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_uid_key, uid) == 4);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_cidr_key) == 24);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_cidr_key, gen) == 4);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_cidr_key, policy) == 5);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_cidr_key, addr) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_port_range) == 8);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_port_range, protos) == 4);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_port_range, rule) == 6);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_ports) == 8 + 8 * VIGIL_EG_PORT_RANGES);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_ports, r) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_fqdn_key) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_fqdn_key, hash) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_fqdn_ports_key) == 16);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_fqdn_ports_key, policy) == 4);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_fqdn_ports_key, hash) == 8);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_dns_entry) == 16 * VIGIL_EG_DNS_NAMES);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_dns_entry, expires_ns) == 8 * VIGIL_EG_DNS_NAMES);
VIGIL_ABI_ASSERT(sizeof(struct vigil_eg_event) == 88);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_event, fqdn_hash) == 56);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_event, verdict) == 64);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_event, rule) == 68);
VIGIL_ABI_ASSERT(VIGIL_OFFSET(struct vigil_eg_event, addr) == 72);

#endif
