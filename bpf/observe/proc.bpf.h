/* Processes: exec, fork (new processes only) and the exit of a whole thread
 * group, which also closes the sockets it still held. */
#ifndef VIGIL_OBSERVE_PROC_BPF_H
#define VIGIL_OBSERVE_PROC_BPF_H

#include "observe/sock.bpf.h"

static __always_inline int proc__exec(struct task_struct *task, pid_t old_pid,
				      struct linux_binprm *bprm)
{
	struct vigil_exec_event *e;
	const char *filename;
	long n;

	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_EXEC);
	e->old_tid = old_pid;
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	e->filename_len = n > 0 ? n - 1 : 0;
	/* Wakes the agent at once (execs are rare, unlike payload records): a new
	 * executable with TLS inside (Go, a static OpenSSL) is probed before its
	 * first request, not after the next 20 ms poll. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

static __always_inline int proc__fork(struct task_struct *parent, struct task_struct *child)
{
	struct vigil_fork_event *e;
	__u32 child_pid = BPF_CORE_READ(child, tgid);

	/* Threads share the parent's process entry: only new processes count. */
	if (BPF_CORE_READ(child, pid) != child_pid)
		return 0;
	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_FORK);
	e->child_pid = child_pid;
	e->_pad = 0;
	event__submit(e);
	return 0;
}

struct exit_walk {
	__u32 pid;
};

static long conn__close_on_exit(struct bpf_map *map, struct vigil_conn_key *key,
				struct vigil_conn_value *val, struct exit_walk *walk)
{
	if (key->pid != walk->pid)
		return 0;
	conn__emit(key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_EXIT);
	uid_conns__release(val);
	conn__forget(key);
	return 0;
}

static __always_inline int proc__exit(struct task_struct *task)
{
	struct vigil_exit_event *e;
	struct exit_walk walk;
	struct vigil_pid_fds *owned;

	/* signal->live reaches 0 in do_exit() before this tracepoint fires, and the
	 * fd table is released only after it: the sockets are still readable. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	walk.pid = BPF_CORE_READ(task, tgid);
	owned = bpf_map_lookup_elem(&pid_conns, &walk.pid);
	if (owned) {
		if (owned->overflow) {
			/* More sockets than slots: the full walk (~3 ns per bucket). */
			bpf_for_each_map_elem(&conns, conn__close_on_exit, &walk, 0);
		} else {
			for (int i = 0; i < VIGIL_PID_FD_SLOTS; i++) {
				struct vigil_conn_key key = {.pid = walk.pid, .fd = owned->slots[i] - 1};
				struct vigil_conn_value *val;

				if (owned->slots[i] == 0)
					continue;
				val = bpf_map_lookup_elem(&conns, &key);
				if (!val)
					continue;
				conn__emit(&key, val, VIGIL_EV_CONN_CLOSE, VIGIL_CLOSE_EXIT);
				uid_conns__release(val);
				conn__forget(&key);
			}
		}
		bpf_map_delete_elem(&pid_conns, &walk.pid);
	}
	e = event__reserve(sizeof(*e));
	if (!e)
		return 0;
	event__fill_header(&e->hdr, VIGIL_EV_EXIT);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->_pad = 0;
	event__submit(e);
	return 0;
}

#endif
