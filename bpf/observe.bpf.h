/* Kernel-side helpers shared by the observation programs (bpf/ only). */
#ifndef VIGIL_OBSERVE_BPF_H
#define VIGIL_OBSERVE_BPF_H

/* Constants that vmlinux.h cannot carry (they are macros in the kernel). */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define RCV_SHUTDOWN 1
#define MSG_PEEK 2

#endif
