/* Handing records to the agent: the one ring buffer, its wakeup policy, and
 * payload records (reserved in the ring when small, else built in the per-CPU
 * scratch and copied out). Every record the ring cannot take is counted. */
#ifndef VIGIL_OBSERVE_RING_BPF_H
#define VIGIL_OBSERVE_RING_BPF_H

#include "lib/event.bpf.h"
#include "observe/maps.bpf.h"

static __always_inline void *event__reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		lost__inc(&lost, VIGIL_LOST_RINGBUF);
	return e;
}

/* Waking the agent costs the traced task an irq_work, raised by a self-IPI (on a
 * VM an APIC write, i.e. an exit to the hypervisor: perf showed 2.7 % of a client's
 * time there when every record past the mark woke the agent). The agent polls on a
 * 20 ms timer anyway, so a record wakes it only when it carries the ring across
 * VIGIL_WAKEUP_BYTES, and every record does only once half the ring is taken (a
 * crossing missed between two CPUs waits for the timer at most). At the bench's
 * ~150 MB/s of records a 256 KiB mark woke the agent every 1.7 ms; 2 MiB wakes it
 * about every 13 ms, still inside the timer, for 10% less BPF time per request
 * (bench/results/issue28-exit-only.md). `before`: the ring's unread bytes before
 * the record of `size` bytes. */
#define VIGIL_WAKEUP_BYTES (2048 * 1024)
#define VIGIL_RINGBUF_HDR 8
static __always_inline __u64 event__wakeup_after(__u64 before, __u64 size)
{
	__u64 after = before + size + VIGIL_RINGBUF_HDR;

	if (after < VIGIL_WAKEUP_BYTES)
		return BPF_RB_NO_WAKEUP;
	if (before < VIGIL_WAKEUP_BYTES || after >= bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* The same, the ring's fill read now; `queued`: the ring already holds the
 * record (reserved), else it is added after. */
static __always_inline __u64 event__wakeup_flags(__u64 size, bool queued)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (queued)
		avail = avail >= size + VIGIL_RINGBUF_HDR ? avail - size - VIGIL_RINGBUF_HDR : 0;
	return event__wakeup_after(avail, size);
}

static __always_inline void event__submit_sized(void *e, __u64 size)
{
	bpf_ringbuf_submit(e, event__wakeup_flags(size, true));
}
#define event__submit(e) event__submit_sized((e), sizeof(*(e)))

/* ---- payload records ---------------------------------------------------- */

/* Payload records of up to VIGIL_SMALL_RECORD bytes are built in the ring. */
#define VIGIL_SMALL_PAYLOAD (VIGIL_SMALL_RECORD - offsetof(struct vigil_data_event, data))

/* What a payload record says besides its bytes. */
struct data_meta {
	__u64 offset; /* in this direction's stream */
	__u32 length; /* bytes the call moved */
	__s32 fd;
	__u8 direction;
	__u8 l7;
	__u8 tls; /* the library's number for TLS plaintext, else 0 */
	__u8 ring_known; /* ring_before was read (data__ring_full) */
	__u64 ring_before; /* the ring's unread bytes before this record: read once per
			    * record, the consumer's position being a line the agent writes */
};

/* The wakeup of a payload record of `size` bytes, from the fill read in the drop
 * check when there was one. */
static __always_inline __u64 data__wakeup_flags(const struct data_meta *m, __u64 size, bool queued)
{
	return m->ring_known ? event__wakeup_after(m->ring_before, size) : event__wakeup_flags(size, queued);
}

/* The agent is behind: payload is dropped before paying for its copy. Else the
 * fill read here is kept in `m` for the wakeup decision. */
static __always_inline bool data__ring_full(struct data_meta *m)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (avail + sizeof(struct vigil_data_event) <= bpf_ringbuf_query(&events, BPF_RB_RING_SIZE)) {
		m->ring_before = avail;
		m->ring_known = 1;
		return false;
	}
	lost__inc(&lost, VIGIL_LOST_DATA_RINGBUF);
	return true;
}

/* A small record straight in the ring; NULL (counted) when it is full. */
static __always_inline struct vigil_data_event *data__reserve_small(void)
{
	struct vigil_data_event *e = bpf_ringbuf_reserve(&events, VIGIL_SMALL_RECORD, 0);

	if (!e)
		lost__inc(&lost, VIGIL_LOST_DATA_RINGBUF);
	return e;
}

/* This CPU's scratch record, for payloads too large for a small record. */
static __always_inline struct vigil_data_event *data__scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&data_scratch, &cpu);
}

/* Payload records carry a lite header: only what user space cannot get from
 * the connection (the process is known from its open event and the table). */
static __always_inline void data__fill_header(struct vigil_event_header *hdr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	__builtin_memset(hdr, 0, sizeof(*hdr));
	hdr->ts_ns = bpf_ktime_get_boot_ns();
	hdr->type = VIGIL_EV_DATA;
	hdr->pid = pid_tgid >> 32;
	hdr->tid = (__u32)pid_tgid;
}

/* Fills the record whose first `captured` payload bytes are in place and hands
 * it to the agent: submitted when it was reserved in the ring (`in_ring`, a
 * constant at every call), else copied out of the scratch at its real length. */
static __always_inline void data__submit(struct vigil_data_event *e, const struct vigil_conn_value *val,
					 const struct data_meta *m, __u32 captured, bool in_ring)
{
	data__fill_header(&e->hdr);
	e->conn_id = val->conn_id;
	e->offset = m->offset;
	e->length = m->length;
	e->captured = captured;
	e->fd = m->fd;
	e->direction = m->direction;
	e->role = val->tuple.role;
	e->l7 = m->l7;
	e->tls = m->tls;
	if (in_ring) {
		bpf_ringbuf_submit(e, data__wakeup_flags(m, VIGIL_SMALL_RECORD, true));
		return;
	}
	if (captured > VIGIL_MAX_CAPTURE)
		return;
	__u64 size = offsetof(struct vigil_data_event, data) + captured;

	if (bpf_ringbuf_output(&events, e, size, data__wakeup_flags(m, size, false)) != 0)
		lost__inc(&lost, VIGIL_LOST_DATA_RINGBUF);
}

#endif
