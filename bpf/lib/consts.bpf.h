/* Constants vmlinux.h cannot carry (they are macros in the kernel), shared by
 * every Vigil BPF program. IPPROTO_* come from vmlinux.h's enum. */
#ifndef VIGIL_CONSTS_BPF_H
#define VIGIL_CONSTS_BPF_H

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define RCV_SHUTDOWN 1
#define MSG_PEEK 2
#define NS_PER_SEC 1000000000ULL

/* Loops that stay loops: unrolled, nested table walks exceed the verifier's
 * jump history (bpf/egress/). */
#define NO_UNROLL _Pragma("clang loop unroll(disable)")

#endif
