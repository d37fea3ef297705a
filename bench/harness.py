"""The harness the bench scripts share (run.py, ab_cost.py, go_tls.py): vigild and
bpftrace as peers, wrk rounds, and the per-peer BPF run time and CPU they cost."""
import json
import os
import signal
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
HTTP_SECONDS = int(os.environ.get("VIGIL_BENCH_HTTP_SECONDS", "10"))
HTTP_ROUNDS = int(os.environ.get("VIGIL_BENCH_HTTP_ROUNDS", "5"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

PAYLOAD_SYSCALLS = ["write", "sendto", "writev", "sendmsg", "sendmmsg", "sendfile64", "read", "recvfrom", "readv",
                    "recvmsg", "recvmmsg"]
BPFTRACE_ALL_AGENT_PROBES = ",\n".join(
    [", ".join(f"tracepoint:syscalls:sys_exit_{c}" for c in PAYLOAD_SYSCALLS)]
    + ["tracepoint:syscalls:sys_enter_connect, tracepoint:syscalls:sys_exit_connect",
       "tracepoint:syscalls:sys_exit_accept4, tracepoint:syscalls:sys_exit_accept",
       "tracepoint:syscalls:sys_enter_close",
       "tracepoint:sched:sched_process_exec, tracepoint:sched:sched_process_fork",
       "tracepoint:sched:sched_process_exit"]) + " { @[probe] = count(); }"

# The tracepoints vigild attaches, counted by the same-probes peer: payload
# calls at their exit only, connect at both ends, accept at exit, close at
# entry, and the three sched tracepoints.
AGENT_TRACEPOINTS = len(PAYLOAD_SYSCALLS) + 8

BPFTRACE_SAME_PROBES = """
tracepoint:syscalls:sys_enter_connect, tracepoint:syscalls:sys_exit_connect,
tracepoint:syscalls:sys_exit_accept4, tracepoint:syscalls:sys_exit_accept,
tracepoint:syscalls:sys_enter_close,
tracepoint:sched:sched_process_exec, tracepoint:sched:sched_process_fork,
tracepoint:sched:sched_process_exit { @[probe] = count(); }
"""


def wait_for(pred, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Agent:
    def __init__(self, sink_path=None, env=None, extra_config="", wrap=(), api_call="all"):
        self.dir = tempfile.mkdtemp(prefix="vigil-bench-")
        self.sock = os.path.join(self.dir, "vigil.sock")
        self.events = os.path.join(self.dir, "events.jsonl")
        cfg = os.path.join(self.dir, "vigil.yaml")
        with open(cfg, "w") as f:
            # events.api_call only when not the default: builds before it have no such key.
            level = f"  api_call: {api_call}\n" if api_call != "all" else ""
            f.write(f"control_socket: {self.sock}\ndata_dir: {self.dir}/data\nevents:\n{level}  sinks:\n"
                    f"    - type: file\n      path: {sink_path or self.events}\n{extra_config}")
        self.proc = subprocess.Popen(list(wrap) + [os.path.join(BIN, "vigild"), "--config", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        if not wait_for(lambda: os.path.exists(self.sock), 90):
            raise RuntimeError("vigild did not start")
        time.sleep(0.5)

    def status(self):
        out = subprocess.run([os.path.join(BIN, "vigil"), "--socket", self.sock, "status", "-o", "json"],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


class Bpftrace:
    def __init__(self, program=BPFTRACE_SAME_PROBES):
        self.proc = subprocess.Popen(["bpftrace", "-e", program], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        # bpftrace prints "Attaching N probes..." once attached (after any warnings).
        seen = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("bpftrace did not attach: " + "".join(seen))
            seen.append(line)
            if line.startswith("Attaching"):
                break
        time.sleep(1.0)

    def stop(self):
        """Ends bpftrace; returns its map printout."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.communicate(timeout=20)[0] or ""
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return ""


def wrk_round(url):
    out = subprocess.run(["wrk", "-t1", "-c10", f"-d{HTTP_SECONDS}s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout
    reqs = int(out.split(" requests in ")[0].split()[-1])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return reqs, rps


LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
TLS_UPROBES = (f"uprobe:{LIBSSL}:SSL_write, uprobe:{LIBSSL}:SSL_write_ex, uprobe:{LIBSSL}:SSL_read, "
               f"uprobe:{LIBSSL}:SSL_read_ex, uretprobe:{LIBSSL}:SSL_read, uretprobe:{LIBSSL}:SSL_read_ex")
BPFTRACE_ALL_AGENT_PROBES_TLS = BPFTRACE_ALL_AGENT_PROBES.replace(" { @[probe]", f",\n{TLS_UPROBES} {{ @[probe]")


def uprobe_hits(bpftrace_output):
    """Sum of the uprobe/uretprobe counts in a bpftrace `@[probe]: N` printout."""
    total = 0
    for line in bpftrace_output.splitlines():
        if line.startswith(("@[uprobe:", "@[uretprobe:")):
            total += int(line.rsplit(":", 1)[1])
    return total


class ProgCost:
    """BPF run time of the programs a peer loaded (kernel.bpf_stats_enabled=1): snapshot
    the program ids before the peer starts, then `start()` right before the load and
    `stop()` right after it; `per_program` is run_time_ns per program over the load."""

    def __init__(self):
        self.before = set(bpf_programs())

    def _ours(self):
        return {i: p for i, p in bpf_programs().items() if i not in self.before}

    def start(self):
        self.p0 = self._ours()

    def stop(self):
        p1 = self._ours()
        self.per_program = {}
        for i, p in p1.items():
            ns = p.get("run_time_ns", 0) - self.p0.get(i, {}).get("run_time_ns", 0)
            self.per_program[p["name"]] = self.per_program.get(p["name"], 0) + ns
        return sum(self.per_program.values())


def bpf_programs():
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True).stdout
    return {p["id"]: p for p in json.loads(out or "[]")}


class BpfStats:
    """kernel.bpf_stats_enabled=1 for the life of the block (restored after)."""

    def __enter__(self):
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            self.was = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")

    def __exit__(self, *exc):
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.was)


def peer_rows(results, value_header, labels):
    """The side-by-side table of one scenario: median, every round, ratio to no agent."""
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [f"| peer | {value_header} (median) | rounds | ratio to no agent |", "|---|---|---|---|"]
    for k, label in labels:
        r = ", ".join(f"{x:.0f}" for x in results[k])
        rows.append(f"| {label} | {med[k]:.0f} | {r} | {med[k] / med['none']:.3f} |")
    return rows


def vigild_label(key):
    capture, events = peer_spec(vigild_spec(key))
    return ("vigild observing" + ("" if capture == "default" else f", capture.level: {CAPTURE_NAMES[capture]}") +
            ("" if events == "all" else f", events.api_call: {events}"))


def cost_rows(cost):
    """The per-request cost table of one HTTP scenario: BPF run time and the observer's
    own CPU, medians and every round, and vigild's costliest programs."""
    med = lambda xs: statistics.median(xs)
    rows = ["| peer | BPF run time ns/request (median) | rounds | observer CPU ns/request (median) | rounds | "
            "total ns/request |", "|---|---|---|---|---|---|", "| no agent | 0 | | 0 | | 0 |"]
    for k in [k for k in cost if k != "bpftrace"] + ["bpftrace"]:
        label = "bpftrace counting (the reference)" if k == "bpftrace" else vigild_label(k)
        b, c = [x[0] for x in cost[k]], [x[1] for x in cost[k]]
        rows.append(f"| {label} | {med(b):.0f} | {', '.join(f'{x:.0f}' for x in b)} | {med(c):.0f} | "
                    f"{', '.join(f'{x:.0f}' for x in c)} | {med(b) + med(c):.0f} |")
    progs = {name: med([r[2].get(name, 0) for r in cost["vigild"]]) for name in cost["vigild"][0][2]}
    top = [f"{n.replace('tp__syscalls__', '')} {v:.0f}" for n, v in sorted(progs.items(), key=lambda kv: -kv[1])
           if v >= 1][:10]
    rows += ["", "vigild's programs, median ns of BPF run time per request: " + ", ".join(top) + "."]
    return rows


class CountingPeer:
    """The counting reference of an observe scenario: bpftrace running `program`, and
    optionally uprobe_count (build/bin) counting uprobes at `sites` (binary, [file
    offsets]) that bpftrace cannot attach to. stop() returns the uprobe hits of both."""

    def __init__(self, program, sites=None):
        self.bt = Bpftrace(program)
        self.extra = None
        if sites:
            binary, offsets = sites
            self.extra = subprocess.Popen([os.path.join(BIN, "uprobe_count"), binary, *map(hex, offsets)],
                                          stdout=subprocess.PIPE, text=True)
            if self.extra.stdout.readline().strip() != "attached":
                raise RuntimeError("uprobe_count did not attach")

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p.pid) for p in (self.bt.proc, self.extra) if p)

    def stop(self):
        hits = uprobe_hits(self.bt.stop())
        if self.extra:
            self.extra.send_signal(signal.SIGINT)
            hits += int(self.extra.communicate(timeout=20)[0].split()[-1])
        return hits


def vigild_round(load, extra_config="", wrap=(), drain=2.0, api_call="all"):
    """One round of `load()` -> (requests, req/s) with a fresh vigild (a file sink on
    /dev/null): the BPF run time of its programs (meaningful under BpfStats), its CPU
    over the round and `drain` seconds after, and what it counted. A dict."""
    pc = ProgCost()
    agent = Agent(sink_path="/dev/null", extra_config=extra_config, wrap=wrap, api_call=api_call)
    try:
        before = agent.status()["counters"]["http"]["api_calls"]
        cpu0 = proc_cpu_seconds(agent.proc.pid)
        pc.start()
        t0 = time.monotonic()
        reqs, rps = load()
        wall = time.monotonic() - t0
        time.sleep(drain)
        bpf_ns = pc.stop()
        cpu = proc_cpu_seconds(agent.proc.pid) - cpu0
        st = agent.status()
        shipped = st["counters"]["http"].get("api_call_events", {}).get("shipped")
        return {"requests": reqs, "rps": rps, "wall": wall, "cpu": cpu, "bpf_ns": bpf_ns,
                "per_program": pc.per_program, "api_calls": st["counters"]["http"]["api_calls"] - before,
                "events_shipped": shipped,
                "lost": {k: v for k, v in st["counters"]["lost"].items() if v},
                "rss_kib": proc_peak_rss_kib(agent.proc.pid), "inventory": st.get("inventory", {})}
    finally:
        agent.stop()


# vigild's peers in an observe scenario: "EVENTS" (events.api_call at the default capture
# level) or "CAPTURE:EVENTS" (capture.level too), e.g. "all", "notable", "metadata:all".
EVENT_LEVELS = [l for l in os.environ.get("VIGIL_BENCH_EVENT_LEVELS", "all,notable").split(",") if l]
# The capture levels as configuration; "default" is headers with each endpoint's first
# 20 calls and 1 in 100 after them in full.
CAPTURE_CONFIG = {"default": "", "metadata": "capture:\n  level: metadata\n",
                  "headers": "capture:\n  full_first: 0\n  full_sample_every: 0\n",
                  "full": "capture:\n  level: full\n"}
CAPTURE_NAMES = {"default": "headers + full samples (default)", "metadata": "metadata",
                 "headers": "headers (no full samples)", "full": "full (every call)"}


def peer_spec(spec):
    """"CAPTURE:EVENTS" -> (capture level, events.api_call)."""
    capture, _, events = spec.rpartition(":")
    return capture or "default", events


def vigild_key(spec):
    return "vigild" if spec == "all" else f"vigild_{spec}"


def vigild_spec(key):
    return "all" if key == "vigild" else key[len("vigild_"):]


def observe_rounds(load, counting_peer, levels=None):
    """HTTP_ROUNDS interleaved rounds of `load()` -> (requests, req/s) with no agent, with vigild
    (a file sink on /dev/null), and with the counting reference `counting_peer()` (a
    CountingPeer); for the two observers the BPF run time of their own programs and their
    CPU, per request. Returns (req/s per peer, vigild's stats per round, uprobe hits per
    request, cost)."""
    levels = levels or EVENT_LEVELS
    results = {"none": [], "bpftrace": [], **{vigild_key(l): [] for l in levels}}
    cost = {"bpftrace": [], **{vigild_key(l): [] for l in levels}}  # per round: (BPF ns/req, CPU ns/req, {program: ns/req})
    agent_stats = {vigild_key(l): [] for l in levels}
    hits_per_request = []
    with BpfStats():
        load()  # warm-up
        for _ in range(HTTP_ROUNDS):
            results["none"].append(load()[1])

            for spec in levels:
                key = vigild_key(spec)
                capture, events = peer_spec(spec)
                r = vigild_round(load, CAPTURE_CONFIG[capture], api_call=events)
                reqs = r["requests"]
                agent_stats[key].append({"cpu_pct": 100.0 * r["cpu"] / r["wall"], "rss_kib": r["rss_kib"],
                                         "requests": reqs, "api_calls": r["api_calls"], "lost": r["lost"],
                                         "events_shipped": r["events_shipped"]})
                cost[key].append((r["bpf_ns"] / reqs, 1e9 * r["cpu"] / reqs,
                                  {k: v / reqs for k, v in r["per_program"].items()}))
                results[key].append(r["rps"])

            pc = ProgCost()
            peer = counting_peer()
            cpu0 = peer.cpu_seconds()
            pc.start()
            reqs, rps = load()
            bpf_ns = pc.stop()
            cpu = peer.cpu_seconds() - cpu0
            results["bpftrace"].append(rps)
            hits_per_request.append(peer.stop() / reqs)
            cost["bpftrace"].append((bpf_ns / reqs, 1e9 * cpu / reqs, {}))
    return results, agent_stats, hits_per_request, cost
