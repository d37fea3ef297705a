/* In-kernel protocol inference: from a stream's first bytes, whether its
 * payload is worth copying to the agent at all. */
#ifndef VIGIL_OBSERVE_L7_BPF_H
#define VIGIL_OBSERVE_L7_BPF_H

#include "observe/maps.bpf.h"

/* Socket bytes not worth copying: not HTTP, or TLS records (see tls__emit). */
static __always_inline bool l7__skip(__u32 l7)
{
	return l7 == VIGIL_L7_OTHER || l7 == VIGIL_L7_TLS;
}

/* "METHOD SP /..." (or "*", or an absolute "http://" target) after at most one
 * empty line (RFC 9112 §2.2): METHOD is any token of upper-case letters, '-' and
 * '_' (RFC 9110 allows any token: WebDAV REPORT, PURGE, M-SEARCH, QUERY ...). */
#define VIGIL_MAX_METHOD 24
static __always_inline bool l7__request_line(const char *d, __u32 len)
{
	__u32 start = 0;

	if (len > 1 && d[0] == '\r' && d[1] == '\n')
		start = 2;
	else if (len > 0 && d[0] == '\n')
		start = 1;
	for (__u32 i = 0; i < VIGIL_MAX_METHOD; i++) {
		__u32 k = start + i;
		char c;

		if (k + 1 >= len)
			return false;
		c = d[k];
		if (c == ' ') {
			char t = d[k + 1];

			return i > 0 && (t == '/' || t == '*' || t == 'h' || t == 'H');
		}
		if (!((c >= 'A' && c <= 'Z') || c == '-' || c == '_'))
			return false;
	}
	return false;
}

/* First payload bytes of a connection: worth copying (HTTP/1.x, h2c) or not. */
static __always_inline __u32 l7__classify(const char *d, __u32 len)
{
	if (!infer_l7)
		return VIGIL_L7_HTTP1;
	/* An HTTP/2 server speaks first: its SETTINGS frame (type 4 on stream 0). */
	if (len >= 9 && d[0] == 0 && d[3] == 4 && (d[4] & ~1) == 0 && d[5] == 0 && d[6] == 0 && d[7] == 0 &&
	    d[8] == 0)
		return VIGIL_L7_HTTP2;
	if (d[0] == 0x16 && d[1] == 0x03 && d[2] <= 0x04) /* a TLS handshake record */
		return VIGIL_L7_TLS;
	if (d[0] == 'H' && d[1] == 'T' && d[2] == 'T' && d[3] == 'P')
		return VIGIL_L7_HTTP1;
	if (d[0] == 'P' && d[1] == 'R' && d[2] == 'I' && d[3] == ' ')
		return VIGIL_L7_HTTP2;
	if ((d[0] == 'C' && d[1] == 'O' && d[2] == 'N' && d[3] == 'N') || l7__request_line(d, len))
		return VIGIL_L7_HTTP1;
	return VIGIL_L7_OTHER;
}

#endif
