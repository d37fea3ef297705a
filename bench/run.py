#!/usr/bin/env python3
"""Benchmark harness (make bench): runs each scenario interleaved against its
peers in one run and writes bench/results/latest.md.

Scenario `connect`: connection churn (connect/accept/1-byte echo/close on loopback),
measured with no agent, with vigild observing, and with bpftrace counting the same
tracepoints the agent attaches (the cheapest possible observer of those hooks)."""
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
ROUNDS = int(os.environ.get("VIGIL_BENCH_ROUNDS", "5"))
CONNS = int(os.environ.get("VIGIL_BENCH_CONNS", "20000"))
HTTP_ROUNDS = int(os.environ.get("VIGIL_BENCH_HTTP_ROUNDS", "3"))
HTTP_SECONDS = int(os.environ.get("VIGIL_BENCH_HTTP_SECONDS", "10"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

PAYLOAD_SYSCALLS = ["write", "sendto", "writev", "sendmsg", "sendfile64", "read", "recvfrom", "readv",
                    "recvmsg"]
BPFTRACE_ALL_AGENT_PROBES = ",\n".join(
    [f"tracepoint:syscalls:sys_enter_{c}, tracepoint:syscalls:sys_exit_{c}" for c in PAYLOAD_SYSCALLS]
    + ["tracepoint:syscalls:sys_enter_connect, tracepoint:syscalls:sys_exit_connect",
       "tracepoint:syscalls:sys_exit_accept4, tracepoint:syscalls:sys_exit_accept",
       "tracepoint:syscalls:sys_enter_close",
       "tracepoint:sched:sched_process_exec, tracepoint:sched:sched_process_fork",
       "tracepoint:sched:sched_process_exit"]) + " { @[probe] = count(); }"

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
    def __init__(self, sink_path=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="vigil-bench-")
        self.sock = os.path.join(self.dir, "vigil.sock")
        self.events = os.path.join(self.dir, "events.jsonl")
        cfg = os.path.join(self.dir, "vigil.yaml")
        with open(cfg, "w") as f:
            f.write(f"control_socket: {self.sock}\nevents:\n  sinks:\n    - type: file\n      path: {sink_path or self.events}\n")
        self.proc = subprocess.Popen([os.path.join(BIN, "vigild"), "--config", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})
        if not wait_for(lambda: os.path.exists(self.sock)):
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
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def connect_round():
    out = subprocess.run([os.path.join(BIN, "connect_loop"), str(CONNS)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def bench_connect():
    results = {"none": [], "vigild": [], "bpftrace": []}
    agent_stats = []
    for _ in range(ROUNDS):
        results["none"].append(connect_round())

        agent = Agent()
        cpu0 = proc_cpu_seconds(agent.proc.pid)
        t0 = time.monotonic()
        results["vigild"].append(connect_round())
        wall = time.monotonic() - t0
        time.sleep(1.5)  # let it drain and report lost counters
        cpu = proc_cpu_seconds(agent.proc.pid) - cpu0
        st = agent.status()
        with open(agent.events) as f:
            n_conn = sum(1 for line in f if '"kind":"connection"' in line)
        agent_stats.append({
            "cpu_pct": 100.0 * cpu / wall, "rss_kib": proc_peak_rss_kib(agent.proc.pid),
            "events": n_conn, "lost": sum(st["counters"]["lost"].values())})
        agent.stop()

        bt = Bpftrace(BPFTRACE_ALL_AGENT_PROBES)
        results["bpftrace"].append(connect_round())
        bt.stop()
    return results, agent_stats


def wrk_round(url):
    out = subprocess.run(["wrk", "-t1", "-c10", f"-d{HTTP_SECONDS}s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout
    reqs = int(out.split(" requests in ")[0].split()[-1])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return reqs, rps


def bench_http():
    from vigil_e2e import Nginx
    nginx = Nginx()
    url = f"http://127.0.0.1:{nginx.port}/api/bench/1"
    results = {"none": [], "vigild": [], "bpftrace": []}
    agent_stats = []
    try:
        wrk_round(url)  # warm-up
        for _ in range(HTTP_ROUNDS):
            results["none"].append(wrk_round(url)[1])

            agent = Agent(sink_path="/dev/null")
            before = agent.status()["counters"]["http"]["api_calls"]
            cpu0 = proc_cpu_seconds(agent.proc.pid)
            t0 = time.monotonic()
            reqs, rps = wrk_round(url)
            wall = time.monotonic() - t0
            time.sleep(2)
            cpu = proc_cpu_seconds(agent.proc.pid) - cpu0
            st = agent.status()
            calls = st["counters"]["http"]["api_calls"] - before
            lost = {k: v for k, v in st["counters"]["lost"].items() if v}
            agent_stats.append({"cpu_pct": 100.0 * cpu / wall, "rss_kib": proc_peak_rss_kib(agent.proc.pid),
                                "requests": reqs, "api_calls": calls, "lost": lost})
            results["vigild"].append(rps)
            agent.stop()

            bt = Bpftrace(BPFTRACE_ALL_AGENT_PROBES)
            results["bpftrace"].append(wrk_round(url)[1])
            bt.stop()
    finally:
        nginx.stop()
    return results, agent_stats


def peer_rows(results, value_header, labels):
    """The side-by-side table of one scenario: median, every round, ratio to no agent."""
    med = {k: statistics.median(v) for k, v in results.items()}
    rows = [f"| peer | {value_header} (median) | rounds | ratio to no agent |", "|---|---|---|---|"]
    for k, label in labels:
        r = ", ".join(f"{x:.0f}" for x in results[k])
        rows.append(f"| {label} | {med[k]:.0f} | {r} | {med[k] / med['none']:.3f} |")
    return rows


def http_section(results, agent_stats):
    med = {k: statistics.median(v) for k, v in results.items()}
    lines = [
        "",
        "## Plaintext HTTP observe (nginx + wrk, keep-alive, loopback)",
        "",
        f"`wrk -t1 -c10 -d{HTTP_SECONDS}s --latency http://127.0.0.1:PORT/api/bench/1` against one nginx "
        f"worker (tests/e2e Nginx config), {HTTP_ROUNDS} interleaved rounds per peer; vigild ships every event "
        "to a file sink on /dev/null (encoding included, disk excluded).",
        "",
    ]
    lines += peer_rows(results, "req/s", (("none", "no agent"), ("vigild", "vigild observing (26 programs)"),
                                          ("bpftrace", "bpftrace counting the same 26 tracepoints")))
    lines += [
        "",
        f"vigild vs bpftrace (same probes): {med['vigild'] / med['bpftrace']:.3f} of its throughput.",
        "",
        "| vigild round | requests (wrk) | api_call events | completeness (÷ 2 sides) | CPU % | peak RSS MiB | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(agent_stats):
        lines.append(f"| {i + 1} | {s['requests']} | {s['api_calls']} | {s['api_calls'] / (2 * s['requests']):.4f} | "
                     f"{s['cpu_pct']:.1f} | {s['rss_kib'] / 1024:.1f} | {s['lost'] or 'none'} |")
    return lines


def inference_section():
    mib = int(os.environ.get("VIGIL_BENCH_STREAM_MIB", "1024"))
    res = {"none": [], "infer": [], "noinfer": []}
    lost = {"infer": [], "noinfer": []}

    def stream():
        return float(subprocess.run([os.path.join(BIN, "stream_loop"), str(mib)], capture_output=True,
                                    text=True, check=True).stdout)

    for _ in range(3):
        res["none"].append(stream())
        for k, env in (("infer", {}), ("noinfer", {"VIGIL_BENCH_NO_L7_INFERENCE": "1"})):
            agent = Agent(sink_path="/dev/null", env=env)
            res[k].append(stream())
            time.sleep(1.5)
            lost[k].append(agent.status()["counters"]["lost"].get("kernel_data_ringbuf", 0))
            agent.stop()
    med = {k: statistics.median(v) for k, v in res.items()}
    return [
        "",
        "## Does in-kernel protocol inference pay? (bulk non-HTTP stream)",
        "",
        f"`build/bin/stream_loop {mib}`: one loopback TCP connection, {mib} MiB of binary data in 16 KiB "
        "writes; 3 interleaved rounds. With inference the first bytes mark the connection as not HTTP and "
        "the payload hooks stop copying; without it (VIGIL_BENCH_NO_L7_INFERENCE=1) every write and read is copied.",
        "",
        "| peer | MiB/s (median) | rounds | ratio to no agent | payload records dropped (ring full) |",
        "|---|---|---|---|---|",
        f"| no agent | {med['none']:.0f} | {', '.join(f'{x:.0f}' for x in res['none'])} | 1.000 | |",
        f"| vigild, inference on (default) | {med['infer']:.0f} | {', '.join(f'{x:.0f}' for x in res['infer'])} | "
        f"{med['infer'] / med['none']:.3f} | {lost['infer']} |",
        f"| vigild, inference off | {med['noinfer']:.0f} | {', '.join(f'{x:.0f}' for x in res['noinfer'])} | "
        f"{med['noinfer'] / med['none']:.3f} | {lost['noinfer']} |",
    ]


def micro_section():
    out = subprocess.run([os.path.join(BIN, "micro_bench"), "--benchmark_format=json",
                          "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                         capture_output=True, text=True, check=True).stdout
    rows = {b["run_name"]: b for b in json.loads(out)["benchmarks"] if b.get("aggregate_name") == "median"}

    def rate(name, key):
        b = rows[name]
        return b[key] if key in b else b.get("items_per_second", 0)

    parse_ours = rate("BM_Http1StreamParserOnly", "messages/s")
    parse_lib = rate("BM_LibHttpParser", "messages/s")
    pair = rate("BM_Http1TrackerParseAndPair", "messages/s")
    enc_w = rate("BM_EncodeApiCallWriter", "items_per_second")
    enc_n = rate("BM_EncodeApiCallNlohmann", "items_per_second")
    return [
        "",
        "## Per-event user space (Google Benchmark, one core)",
        "",
        "`build/bin/micro_bench --benchmark_repetitions=3` (medians). Corpus: 256 keep-alive exchanges "
        "shaped like curl requests and nginx responses (fixed-length and chunked).",
        "",
        "| benchmark | rate | ratio |",
        "|---|---|---|",
        f"| HTTP/1.x parse + reassembly + pairing (ours, as the agent runs it) | {pair / 1e6:.2f} M messages/s | target ≥ 1 M |",
        f"| parse only: ours | {parse_ours / 1e6:.2f} M messages/s | {parse_ours / parse_lib:.2f}× libhttp-parser |",
        f"| parse only: libhttp-parser 2.9 (Debian), same bytes, same fields copied out | {parse_lib / 1e6:.2f} M messages/s | 1.00 |",
        f"| encode one api_call event: JsonWriter | {enc_w / 1e6:.2f} M events/s | {enc_w / enc_n:.2f}× nlohmann |",
        f"| encode one api_call event: nlohmann::ordered_json tree + dump | {enc_n / 1e6:.2f} M events/s | 1.00 |",
    ]


def main():
    if os.geteuid() != 0:
        sys.exit("bench: run as root (loads BPF programs)")
    only = os.environ.get("VIGIL_BENCH_ONLY", "")
    http_lines = http_section(*bench_http()) if only in ("", "http") else []
    results, agent_stats = (bench_connect() if only in ("", "connect")
                            else ({"none": [1], "vigild": [1], "bpftrace": [1]}, []))
    med = {k: statistics.median(v) for k, v in results.items()}
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    expected_events = 4 * CONNS  # open+close for the client and the server side
    lines = [
        "# Vigil benchmarks",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- kernel: {platform.release()}; CPU: {cpu} ({os.cpu_count()} cores)",
        f"- commit: {subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}",
        f"- command: `make bench` (bench/run.py; VIGIL_BENCH_ROUNDS={ROUNDS}, VIGIL_BENCH_CONNS={CONNS})",
        "",
        "## Connection churn (connect/accept/1-byte echo/close, loopback)",
        "",
        f"`build/bin/connect_loop {CONNS}`, {ROUNDS} interleaved rounds per peer; median ns per connection.",
        "",
    ]
    lines += peer_rows(results, "ns/conn", (("none", "no agent"), ("vigild", "vigild observing"),
                                            ("bpftrace", "bpftrace counting the same 26 tracepoints")))
    lines += [
        "",
        f"vigild vs bpftrace (same probes): {med['vigild'] / med['bpftrace']:.3f}× the time per connection.",
        "",
        "| vigild round | CPU % | peak RSS MiB | connection events | expected | lost |",
        "|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(agent_stats):
        lines.append(f"| {i + 1} | {s['cpu_pct']:.1f} | {s['rss_kib'] / 1024:.1f} | {s['events']} | "
                     f"{expected_events} | {s['lost']} |")
    lines += http_lines
    if only in ("", "inference"):
        lines += inference_section()
    if only in ("", "micro"):
        lines += micro_section()
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    # A partial run (VIGIL_BENCH_ONLY) must not replace the full table.
    path = os.path.join(ROOT, "bench", "results", "partial.md" if only else "latest.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
