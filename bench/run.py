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
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-bench-")
        self.sock = os.path.join(self.dir, "vigil.sock")
        self.events = os.path.join(self.dir, "events.jsonl")
        cfg = os.path.join(self.dir, "vigil.yaml")
        with open(cfg, "w") as f:
            f.write(f"control_socket: {self.sock}\nevents:\n  sinks:\n    - type: file\n      path: {self.events}\n")
        self.proc = subprocess.Popen([os.path.join(BIN, "vigild"), "--config", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    def __init__(self):
        self.proc = subprocess.Popen(["bpftrace", "-e", BPFTRACE_SAME_PROBES], stdout=subprocess.PIPE,
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

        bt = Bpftrace()
        results["bpftrace"].append(connect_round())
        bt.stop()
    return results, agent_stats


def main():
    if os.geteuid() != 0:
        sys.exit("bench: run as root (loads BPF programs)")
    results, agent_stats = bench_connect()
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
        "| peer | ns/conn (median) | rounds | ratio to no agent |",
        "|---|---|---|---|",
    ]
    for k, label in (("none", "no agent"), ("vigild", "vigild observing"),
                     ("bpftrace", "bpftrace counting the same 8 tracepoints")):
        r = ", ".join(f"{x:.0f}" for x in results[k])
        lines.append(f"| {label} | {med[k]:.0f} | {r} | {med[k] / med['none']:.3f} |")
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
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "latest.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
