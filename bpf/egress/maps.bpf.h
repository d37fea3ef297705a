/* The tables of the egress programs: the compiled policies of two generations,
 * learnt DNS names, verdict events and lost counters. Pinned by the agent. */
#ifndef VIGIL_EGRESS_MAPS_BPF_H
#define VIGIL_EGRESS_MAPS_BPF_H

#include "vigil/egress_abi.h"

const volatile __u32 egress_abi_version = VIGIL_EGRESS_ABI_VERSION;

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

/* (netns, address) -> pattern hashes its DNS names matched (learnt, with expiry). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_eg_dns_key);
	__type(value, struct vigil_eg_dns_entry);
} eg_dns SEC(".maps");

/* A DNS query in flight: its answer must come from where it went, with its id
 * and its question. */
struct dns_query {
	__u64 expires_ns;
	__u64 qhash; /* the question's name hash (VIGIL_EG_HASH_*) */
	__u8 server[16];
	__u16 port;
	__u16 id;
	__u32 pad;
};

/* Per socket that talks to a DNS port (made at its connect or sendmsg): its
 * network namespace and its open queries. Freed with the socket. */
struct dns_sock {
	__u64 netns;
	struct dns_query q[VIGIL_EG_DNS_QUERIES];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct dns_sock);
} eg_dns_socks SEC(".maps");

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

/* enum vigil_eg_lost_slot */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EG_LOST_SLOTS);
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

#endif
