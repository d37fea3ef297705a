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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENT_TRACEPOINTS, BIN, BPFTRACE_ALL_AGENT_PROBES, BPFTRACE_ALL_AGENT_PROBES_TLS,  # noqa: E402
                     HTTP_ROUNDS, HTTP_SECONDS, ROOT, Agent, Bpftrace, CountingPeer, cost_rows, observe_rounds,
                     CAPTURE_NAMES, peer_rows, peer_spec, proc_cpu_seconds, proc_peak_rss_kib, vigild_label, vigild_round,
                     vigild_spec, wait_for, wrk_round)

ROUNDS = int(os.environ.get("VIGIL_BENCH_ROUNDS", "5"))
CONNS = int(os.environ.get("VIGIL_BENCH_CONNS", "20000"))


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


# The plaintext scenario's vigild peers (harness.peer_spec): the default, each event level,
# each capture level with every event shipped, and metadata with notable events.
PLAINTEXT_PEERS = ["all", "notable", "sampled", "metadata:all", "headers:all", "full:all", "metadata:notable"]


def bench_http(tls=False):
    """no agent / vigild / bpftrace counting, interleaved; for the two observers also the
    BPF run time (per program) and the observer's own CPU, each per request."""
    from vigil_e2e import Nginx
    nginx = Nginx(tls=tls)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{nginx.port}/api/bench/1"
    try:
        program = BPFTRACE_ALL_AGENT_PROBES_TLS if tls else BPFTRACE_ALL_AGENT_PROBES
        # Plaintext: every capture level and event level (the capture cost table); TLS: the event levels.
        levels = None if tls or "VIGIL_BENCH_EVENT_LEVELS" in os.environ else PLAINTEXT_PEERS
        results, agent_stats, hits, cost = observe_rounds(lambda: wrk_round(url), lambda: CountingPeer(program),
                                                          levels=levels)
    finally:
        nginx.stop()
    return results, agent_stats, hits if tls else None, cost


INV_ROUNDS = int(os.environ.get("VIGIL_BENCH_INV_ROUNDS", "5"))


def agent_round(url, extra_config="", wrap=()):
    """One wrk round against nginx with a fresh vigild: (req/s, agent CPU ns per request, api_calls, RSS KiB)."""
    r = vigild_round(lambda: wrk_round(url), extra_config, wrap)
    return r["rps"], 1e9 * r["cpu"] / r["requests"], r["api_calls"], r["rss_kib"], r["inventory"]


def bench_inventory_observe():
    """Plaintext observe with the inventory on and off, interleaved (the order alternates per round)."""
    from vigil_e2e import Nginx
    nginx = Nginx()
    url = f"http://127.0.0.1:{nginx.port}/api/bench/1"
    res = {"on": [], "off": []}
    try:
        wrk_round(url)
        for i in range(INV_ROUNDS):
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for peer in order:
                res[peer].append(agent_round(url, "" if peer == "on" else "apimap:\n  enabled: false\n"))
    finally:
        nginx.stop()
    return res


def inventory_instructions(calls=100000):
    """Instructions per header-only observe() under callgrind: a figure the VM's noise does not move."""
    if not shutil.which("valgrind"):
        return None
    out = os.path.join(tempfile.gettempdir(), f"vigil-inv-cg.{os.getpid()}")
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--toggle-collect=vigil::apimap::Inventory::observe(*",
                        os.path.join(BIN, "inventory_bench"), "--calls", str(calls)],
                       capture_output=True, text=True)
    if os.path.exists(out):
        os.unlink(out)
    m = re.search(r"Collected : (\d+)", r.stderr)
    return int(m.group(1)) / calls if m else None


def inventory_section(res):
    # Five repetitions, every one shown for the header-only rows (the VM varies ±20% between rounds).
    out = subprocess.run([os.path.join(BIN, "inventory_bench"), "--benchmark_format=json",
                          "--benchmark_repetitions=5"],
                         capture_output=True, text=True, check=True).stdout
    runs = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "iteration":
            runs.setdefault(b["run_name"], []).append(b)
    rate = {k: statistics.median(x.get("items_per_second", 0) for x in v) for k, v in runs.items()}
    mbps = {k: statistics.median(x.get("bytes_per_second", 0) for x in v) / 1048576 for k, v in runs.items()}
    every = {k: ", ".join(f"{x.get('items_per_second', 0) / 1e6:.2f}" for x in v) for k, v in runs.items()}
    instr = inventory_instructions()
    rss = json.loads(subprocess.run([os.path.join(BIN, "inventory_bench"), "--rss"], capture_output=True, text=True,
                                    check=True).stdout)
    med = {p: statistics.median(x[0] for x in v) for p, v in res.items()}
    cpu = {p: statistics.median(x[1] for x in v) for p, v in res.items()}
    lines = [
        "",
        "## API inventory (agent/apimap)",
        "",
        "`build/bin/inventory_bench --benchmark_repetitions=5` (medians, one core): template + stats + auth + "
        "classification per call, on a corpus shaped like the e2e traffic (ids, UUIDs, dates, `me`, "
        "words; curl/nginx headers, half with a bearer token). Header-only: 256 recorded calls replayed, the "
        "exchange in cache as it is in vigild right after parsing; *fresh ids* writes a new id into every "
        "id path on each replay (no such path repeats); *cold* replays 4096 calls, each out of cache by its turn.",
        "",
        "| benchmark | rate | ratio |",
        "|---|---|---|",
        f"| inventory update, header-only calls | **{rate['BM_InventoryHeaderOnly'] / 1e6:.3f} M calls/s** "
        f"(rounds: {every['BM_InventoryHeaderOnly']}) | target ≥ 1 M |",
        f"| inventory update, header-only calls, fresh ids | {rate['BM_InventoryHeaderOnlyFreshIds'] / 1e6:.3f} M calls/s "
        f"(rounds: {every['BM_InventoryHeaderOnlyFreshIds']}) | |",
        f"| inventory update, header-only calls, cold (4096 calls) | {rate['BM_InventoryHeaderOnlyCold'] / 1e6:.3f} M calls/s "
        f"(rounds: {every['BM_InventoryHeaderOnlyCold']}) | |",
        f"| inventory update, 4 KiB JSON response bodies, Hyperscan | {rate['BM_InventoryJson4KHyperscan'] / 1e3:.1f} k calls/s | "
        f"{rate['BM_InventoryJson4KHyperscan'] / rate['BM_InventoryJson4KRegex']:.1f}× std::regex |",
        f"| inventory update, 4 KiB JSON response bodies, std::regex (same patterns, same validators) | "
        f"{rate['BM_InventoryJson4KRegex'] / 1e3:.2f} k calls/s | 1.0 |",
        f"| sensitive-data scan of one 4 KiB body: Hyperscan | {mbps['BM_Scan4KHyperscan']:.1f} MiB/s | "
        f"{mbps['BM_Scan4KHyperscan'] / mbps['BM_Scan4KRegex']:.1f}× std::regex |",
        f"| sensitive-data scan of one 4 KiB body: std::regex | {mbps['BM_Scan4KRegex']:.2f} MiB/s | 1.0 |",
        "",
        (f"Instructions per header-only call (callgrind, `inventory_bench --calls 100000`): **{instr:.0f}** "
         "(7,106 at 176b3a7, before the template memo, open-addressing maps, XXH3 and the scan cache)." if instr else "Instructions per call: valgrind is not installed."),
        "",
        f"Memory (`inventory_bench --rss`): {rss['calls']:,} calls over {rss['endpoints']:,} endpoints "
        f"(one in eight with a 1 KiB JSON body): RSS grew by **{rss['rss_delta_kib'] / 1024:.1f} MiB** "
        f"(target ≤ 64 MiB; the inventory accounts {rss['accounted_bytes'] / 1048576:.1f} MiB), "
        f"{rss['evicted']} evicted.",
        "",
        f"Plaintext observe with the inventory on and off (nginx + `wrk -t1 -c10 -d{HTTP_SECONDS}s`, vigild with a "
        f"/dev/null file sink, {INV_ROUNDS} rounds each, order alternating):",
        "",
        "| vigild | req/s (median) | rounds | agent CPU ns/request (median) | rounds |",
        "|---|---|---|---|---|",
    ]
    for p, label in (("off", "inventory off (apimap.enabled: false)"), ("on", "inventory on (default)")):
        lines.append(f"| {label} | {med[p]:.0f} | {', '.join(f'{x[0]:.0f}' for x in res[p])} | {cpu[p]:.0f} | "
                     f"{', '.join(f'{x[1]:.0f}' for x in res[p])} |")
    lines += ["", f"Inventory on / off: **{med['on'] / med['off']:.3f}** of the throughput (target ≥ 0.95); "
              f"agent CPU per request {cpu['on'] / cpu['off']:.2f}×. Endpoints in the inventory after a round: "
              f"{', '.join(str(x[4].get('endpoints', '?')) for x in res['on'])}."]
    return lines


def sinks_section(rounds=5):
    """Delivery guarantees' cost (issue 11): bench/sinks_bench.cc, interleaved rounds, every round shown."""
    names = [("BM_FileSinkPlain", "file sink, chain off"), ("BM_FileSinkChained", "file sink, chain on (SHA-256)"),
             ("BM_AckerNoSpool", "acking receiver, no spool"), ("BM_AckerThroughSpool", "acking receiver through the disk spool")]
    runs = {n: [] for n, _ in names}
    for _ in range(rounds):
        for n, _ in names:
            out = subprocess.run([os.path.join(BIN, "sinks_bench"), f"--benchmark_filter=^{n}/",
                                  "--benchmark_format=json"], capture_output=True, text=True, check=True).stdout
            b = json.loads(out)["benchmarks"][0]
            runs[n].append((b["items_per_second"], b["cpu_ms_per_10k"]))
    rate = {n: statistics.median(x[0] for x in v) for n, v in runs.items()}
    cpu = {n: statistics.median(x[1] for x in v) for n, v in runs.items()}
    lines = ["", "## Sinks: the cost of the hash chain and the spool (agent/sinks, agent/audit)", "",
             f"`build/bin/sinks_bench`, {rounds} interleaved rounds: 10,000 api_call-sized events (~900 B) offered "
             "from one thread and written by the sink's own thread (as in vigild), each round until all were "
             "delivered. CPU is both threads' (getrusage).", "",
             "| sink | events/s (median) | rounds (k/s) | CPU ms per 10k events (median) | ratio to its baseline |",
             "|---|---|---|---|---|"]
    base = {"BM_FileSinkPlain": "BM_FileSinkPlain", "BM_FileSinkChained": "BM_FileSinkPlain",
            "BM_AckerNoSpool": "BM_AckerNoSpool", "BM_AckerThroughSpool": "BM_AckerNoSpool"}
    for n, label in names:
        lines.append(f"| {label} | {rate[n] / 1e3:.0f} k | {', '.join(f'{x[0] / 1e3:.0f}' for x in runs[n])} | "
                     f"{cpu[n]:.1f} | {rate[n] / rate[base[n]]:.2f} |")
    lines += ["", f"Chain: +{(cpu['BM_FileSinkChained'] - cpu['BM_FileSinkPlain']) / 10:.2f} µs of CPU per event; "
              f"spool: +{(cpu['BM_AckerThroughSpool'] - cpu['BM_AckerNoSpool']) / 10:.2f} µs per event "
              "(target: chaining and spooling cost ≤ 10% of shipping throughput)."]
    return lines


class TcpDrain:
    """A TCP receiver that reads and discards: the syslog sink's peer in the end-to-end sinks rows."""

    def __init__(self):
        import socket
        import threading
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    def _drain(self, c):
        with c:
            while True:
                b = c.recv(1 << 20)
                if not b:
                    return
                self.bytes += len(b)

    def stop(self):
        self.srv.close()


SINK_E2E_VARIANTS = (
    ("off", "file sink on disk, chain off"),
    ("on", "file sink on disk, chain on (SHA-256)"),
    ("spool", "chain on + syslog TCP sink through its disk spool"),
)


def bench_sinks_e2e():
    """Issue 11's target in the agent itself: the plaintext HTTP load with the file sink on a real file,
    chain off, chain on, and chain on plus a spooled network sink, interleaved per round."""
    from vigil_e2e import Nginx
    nginx = Nginx()
    drain = TcpDrain()
    url = f"http://127.0.0.1:{nginx.port}/api/bench/1"
    runs = {k: [] for k, _ in SINK_E2E_VARIANTS}
    try:
        wrk_round(url)  # warm-up
        for _ in range(HTTP_ROUNDS):
            for key, _ in SINK_E2E_VARIANTS:
                # The spool may hold a whole round (~1 GiB): this row measures cost, not shedding.
                extra = {"off": "      chain: false\n", "on": "",
                         "spool": f"    - type: syslog\n      address: tcp://127.0.0.1:{drain.port}\n"
                                  "      spool_max_mb: 4096\n"}[key]
                agent = Agent(extra_config="      max_size_mb: 64\n      max_files: 2\n" + extra)
                try:
                    before = agent.status()["counters"]["http"]["api_calls"]
                    cpu0 = proc_cpu_seconds(agent.proc.pid)
                    reqs, rps = wrk_round(url)
                    t_end = time.monotonic()
                    time.sleep(1)
                    # CPU counts until every sink delivered what it was given: a sink that fell
                    # behind during the load still pays for its backlog.
                    deadline = time.monotonic() + 180
                    while time.monotonic() < deadline:
                        st = agent.status()
                        if all(s["queue_bytes"] == 0 and s["spool_records"] == 0 for s in st["sinks"]):
                            break
                        time.sleep(0.2)
                    behind = time.monotonic() - t_end
                    cpu = proc_cpu_seconds(agent.proc.pid) - cpu0
                    calls = st["counters"]["http"]["api_calls"] - before
                    lost = {k: v for k, v in st["counters"]["lost"].items() if v}
                    lost.pop("http_unpaired_requests", None)  # wrk's connections cut at the end of a round
                    runs[key].append({"rps": rps, "cpu_us_per_event": 1e6 * cpu / max(calls, 1),
                                      "events": calls, "requests": reqs, "lost": lost, "drained_s": behind})
                finally:
                    agent.stop()
    finally:
        drain.stop()
        nginx.stop()
    return runs


def sinks_e2e_section(runs):
    med = {k: statistics.median(r["rps"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_us_per_event"] for r in v) for k, v in runs.items()}
    lines = ["", "## Sinks in the agent: the plaintext HTTP load shipped to disk (chain off / on / plus a spooled sink)", "",
             f"The plaintext HTTP row's load (`wrk -t1 -c10 -d{HTTP_SECONDS}s`, one nginx worker), vigild with its file "
             "sink on a real file (ext4, max_size_mb 64, 2 files), {0} interleaved rounds of the three configurations; "
             "the third adds a syslog TCP sink (RFC 6587, its disk spool under data_dir) to a receiver that reads and "
             "discards (spool_max_mb 4096, so that nothing is shed). Agent CPU is all of vigild's threads', per api_call "
             "event, counted until every sink delivered what it was given (polled from vigil status: queue and spool "
             "empty); `lost` leaves out the ~10 requests wrk cuts off at the end of a round.".format(HTTP_ROUNDS), "",
             "| configuration | req/s (median) | rounds | ratio to chain off | agent CPU µs per event (median) | rounds | "
             "sinks drained (s after the load) | lost |",
             "|---|---|---|---|---|---|---|---|"]
    for key, label in SINK_E2E_VARIANTS:
        v = runs[key]
        lost = [r["lost"] for r in v if r["lost"]]
        rps_rounds = ", ".join(f"{r['rps']:.0f}" for r in v)
        cpu_rounds = ", ".join(f"{r['cpu_us_per_event']:.2f}" for r in v)
        drained = ", ".join(f"{r['drained_s']:.1f}" for r in v)
        lines.append(f"| {label} | {med[key]:.0f} | {rps_rounds} | {med[key] / med['off']:.3f} | {cpu[key]:.2f} | "
                     f"{cpu_rounds} | {drained} | {lost or 'none'} |")
    return lines



# Figures the sections leave for the targets summary (issue 13's table).
TARGETS = {}


def targets_section():
    """Issue 13's targets against this run's medians (only those measured in this run)."""
    rows = ["", "## Capture cost targets (this run)", "",
            "| target | goal | measured | met |", "|---|---|---|---|"]
    spec = (("plain", f"plaintext HTTP: vigild ÷ bpftrace counting the same {AGENT_TRACEPOINTS} tracepoints (throughput)", 0.9, ">="),
            ("tls", "TLS HTTP: vigild ÷ bpftrace counting the same tracepoints and libssl uprobes", 1.0, ">="),
            ("churn", "connection churn: vigild ÷ bpftrace, time per connection", 1.05, "<="),
            ("bulk", "bulk non-HTTP stream, inference on: vigild ÷ no agent (MiB/s)", 0.95, ">="),
            ("plain_metadata", "plaintext, capture.level metadata: vigild ÷ bpftrace (throughput)", 0.95, ">="),
            ("plain_total", "plaintext: vigild BPF + agent CPU, ns per request", 6000, "<="),
            ("plain_total_stretch", "plaintext: vigild BPF + agent CPU, ns per request (stretch goal)", 3000, "<="),
            ("tls_total", "TLS: vigild BPF + agent CPU, ns per request", 3000, "<="))
    for key, label, goal, op in spec:
        if key not in TARGETS:
            continue
        v = TARGETS[key]
        met = v >= goal if op == ">=" else v <= goal
        fmt = (lambda x: f"{x:.0f}") if goal >= 100 else (lambda x: f"{x:.3f}")
        rows.append(f"| {label} | {op.replace('>=', '≥').replace('<=', '≤')} {fmt(goal)} | {fmt(v)} | "
                    f"{'yes' if met else 'no'} |")
    return rows


def connect_section(results, agent_stats):
    med = {k: statistics.median(v) for k, v in results.items()}
    TARGETS["churn"] = med["vigild"] / med["bpftrace"]
    expected_events = 4 * CONNS  # open+close for the client and the server side
    lines = [
        "",
        "## Connection churn (connect/accept/1-byte echo/close, loopback)",
        "",
        f"`build/bin/connect_loop {CONNS}`, {ROUNDS} interleaved rounds per peer; median ns per connection.",
        "",
    ]
    lines += peer_rows(results, "ns/conn", (("none", "no agent"), ("vigild", "vigild observing"),
                                            ("bpftrace", f"bpftrace counting the same {AGENT_TRACEPOINTS} tracepoints")))
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
    return lines

def http_section(results, agent_stats, hits_per_request=None, cost=None):
    tls = hits_per_request is not None
    med = {k: statistics.median(v) for k, v in results.items()}
    levels = [k for k in results if k.startswith("vigild")]
    TARGETS["tls" if tls else "plain"] = med["vigild"] / med["bpftrace"]
    if not tls and "vigild_metadata:all" in med:
        TARGETS["plain_metadata"] = med["vigild_metadata:all"] / med["bpftrace"]
    if cost:
        TARGETS["tls_total" if tls else "plain_total"] = (statistics.median(x[0] for x in cost["vigild"]) +
                                                          statistics.median(x[1] for x in cost["vigild"]))
        if not tls:
            TARGETS["plain_total_stretch"] = TARGETS["plain_total"]
    lines = [
        "",
        "## TLS HTTP observe (nginx https + wrk, keep-alive, loopback)" if tls else
        "## Plaintext HTTP observe (nginx + wrk, keep-alive, loopback)",
        "",
        f"`wrk -t1 -c10 -d{HTTP_SECONDS}s --latency {'https' if tls else 'http'}://127.0.0.1:PORT/api/bench/1` "
        f"against one nginx worker (tests/e2e Nginx config{', TLS with a self-signed certificate' if tls else ''}), "
        f"{HTTP_ROUNDS} interleaved rounds per peer; vigild ships its events to a file sink on /dev/null "
        "(encoding included, disk excluded): every api_call (events.api_call: all, the default) and, as further "
        "peers, the other event levels (notable: first call of an endpoint, findings, 5xx, 401/403, sensitive "
        "data; every call still paired, counted and fed to the inventory)" +
        ("." if tls else " and the capture levels (capture.level: metadata, headers, full; the default is headers "
         "with full samples)."),
        "",
    ]
    probes = (f"the same {AGENT_TRACEPOINTS} tracepoints and 6 libssl uprobes (SSL_read/_ex entry and return, "
              "SSL_write/_ex)" if tls else f"the same {AGENT_TRACEPOINTS} tracepoints")
    lines += peer_rows(results, "req/s", [("none", "no agent")] + [(k, vigild_label(k)) for k in levels] +
                       [("bpftrace", f"bpftrace counting {probes}")])
    lines += [""] + [f"{vigild_label(k)} vs bpftrace (same probes): {med[k] / med['bpftrace']:.3f} of its throughput."
                     for k in levels]
    lines += [
        "",
        "| vigild round | capture.level | events.api_call | requests (wrk) | api_calls paired | "
        "completeness (÷ 2 sides) | api_call events shipped | CPU % | peak RSS MiB | lost |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in levels:
        capture, events = peer_spec(vigild_spec(k))
        for i, s in enumerate(agent_stats[k]):
            shipped = "" if s.get("events_shipped") is None else s["events_shipped"]
            lines.append(f"| {i + 1} | {CAPTURE_NAMES[capture]} | {events} | {s['requests']} | {s['api_calls']} | "
                         f"{s['api_calls'] / (2 * s['requests']):.4f} | {shipped} | "
                         f"{s['cpu_pct']:.1f} | {s['rss_kib'] / 1024:.1f} | {s['lost'] or 'none'} |")
    if tls:
        lines += ["", "uprobe hits per request (both sides together, counted by the bpftrace peer): " +
                  ", ".join(f"{h:.2f}" for h in hits_per_request) +
                  ". Per side: SSL_write (no return probe: the socket write inside it confirms it) and "
                  "SSL_read entry + return; nginx's extra SSL_read that finds no data ends in EAGAIN."]
    if cost and not tls:
        lines += capture_cost_rows(med, cost, levels)
    if cost:
        lines += ["", "Cost per request (same rounds; kernel.bpf_stats_enabled=1 through the whole scenario, for "
                  "every peer: BPF run time is run_time_ns of the peer's own programs over the wrk round ÷ requests; "
                  "observer CPU is its utime+stime over the round and the 2 s drain after it ÷ requests):", ""]
        lines += cost_rows(cost)
    return lines


def capture_cost_rows(med, cost, levels):
    """Issue 28's capture cost table: each capture level and event level, medians of the rounds above."""
    m = lambda xs: statistics.median(xs)
    rows = ["", "### Capture cost per level", "",
            "capture.level: metadata (method, host, path, status, latency, sizes), headers (plus the header fields: "
            "auth schemes, secrets, media types), headers + full samples (the default: each endpoint's first 20 calls "
            "and 1 in 100 after them also with bodies), full (every call with its body). events.api_call: which "
            "api_call events are shipped (every call is paired, counted and fed to the inventory at every level). "
            "Medians of the rounds above; every round is in the tables of this section.", "",
            "| capture.level | events.api_call | req/s | ÷ bpftrace | BPF ns/request | agent CPU ns/request | "
            "BPF + agent ns/request |", "|---|---|---|---|---|---|---|"]
    for k in levels:
        capture, events = peer_spec(vigild_spec(k))
        b, c = m([x[0] for x in cost[k]]), m([x[1] for x in cost[k]])
        rows.append(f"| {CAPTURE_NAMES[capture]} | {events} | {med[k]:.0f} | {med[k] / med['bpftrace']:.3f} | "
                    f"{b:.0f} | {c:.0f} | {b + c:.0f} |")
    b, c = m([x[0] for x in cost["bpftrace"]]), m([x[1] for x in cost["bpftrace"]])
    rows.append(f"| bpftrace counting (the reference) | | {med['bpftrace']:.0f} | 1.000 | {b:.0f} | {c:.0f} | "
                f"{b + c:.0f} |")
    return rows


def inference_section():
    mib = int(os.environ.get("VIGIL_BENCH_STREAM_MIB", "1024"))
    res = {"none": [], "infer": [], "noinfer": []}
    lost = {"infer": [], "noinfer": []}

    def stream():
        return float(subprocess.run([os.path.join(BIN, "stream_loop"), str(mib)], capture_output=True,
                                    text=True, check=True).stdout)

    for _ in range(ROUNDS):
        res["none"].append(stream())
        for k, env in (("infer", {}), ("noinfer", {"VIGIL_BENCH_NO_L7_INFERENCE": "1"})):
            agent = Agent(sink_path="/dev/null", env=env)
            res[k].append(stream())
            time.sleep(1.5)
            lost[k].append(agent.status()["counters"]["lost"].get("kernel_data_ringbuf", 0))
            agent.stop()
    med = {k: statistics.median(v) for k, v in res.items()}
    TARGETS["bulk"] = med["infer"] / med["none"]
    return [
        "",
        "## Does in-kernel protocol inference pay? (bulk non-HTTP stream)",
        "",
        f"`build/bin/stream_loop {mib}`: one loopback TCP connection, {mib} MiB of binary data in 16 KiB "
        f"writes; {ROUNDS} interleaved rounds. With inference the first bytes mark the connection as not HTTP and "
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


def syscall_section():
    """What hooking syscalls costs the traced process, per call (bench/syscall_loop)."""
    peers = [("none", "no agent", None),
             ("vigild", "vigild", {}),
             ("bpftrace", "bpftrace counting the same 30 tracepoints (the reference)", "bpftrace")]
    res = {k: [] for k, _, _ in peers}

    def loop():
        out = subprocess.run([os.path.join(BIN, "syscall_loop")], capture_output=True, text=True, check=True)
        return tuple(float(x) for x in out.stdout.split())

    for r in range(ROUNDS):
        for key, _, how in (peers if r % 2 == 0 else peers[::-1]):
            peer = Bpftrace() if how == "bpftrace" else Agent(sink_path="/dev/null", env=how) if how is not None else None
            if isinstance(peer, Agent):
                time.sleep(1.0)
            try:
                res[key].append(loop())
            finally:
                if peer:
                    peer.stop()
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in res.items()}
    base = med["none"]
    lines = ["", "## Syscall hook cost (what the traced process pays per call)", "",
             f"`build/bin/syscall_loop`: 1,000,000 getppid() (no program looks at it) then 1,000,000 1-byte reads "
             f"of /dev/zero (a read the payload programs look at: one lookup finds no tracked socket); "
             f"{ROUNDS} rounds, peer order alternating; ns per call, the added cost against no agent in brackets.",
             "", "| peer | getppid ns (median) | read ns (median) | rounds: getppid / read |", "|---|---|---|---|"]
    for key, label, _ in peers:
        g, rd = med[key]
        extra = "" if key == "none" else f" (+{g - base[0]:.0f})", "" if key == "none" else f" (+{rd - base[1]:.0f})"
        rounds = "; ".join(f"{x[0]:.0f} / {x[1]:.0f}" for x in res[key])
        lines.append(f"| {label} | {g:.0f}{extra[0]} | {rd:.0f}{extra[1]} | {rounds} |")
    return lines


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


EGRESS_CONNECTS = int(os.environ.get("VIGIL_BENCH_EGRESS_CONNECTS", "20000"))
EGRESS_ROUNDS = int(os.environ.get("VIGIL_BENCH_EGRESS_ROUNDS", "5"))


def prog_runtime(name):
    """(run_time_ns, run_cnt) of the loaded program `name` (needs kernel.bpf_stats_enabled=1)."""
    out = subprocess.run(["bpftool", "prog", "show", "name", name, "-j"], capture_output=True, text=True)
    progs = json.loads(out.stdout or "[]")
    progs = progs if isinstance(progs, list) else [progs]
    return (sum(p.get("run_time_ns", 0) for p in progs), sum(p.get("run_cnt", 0) for p in progs))


def egress_policy(nrules, exe):
    """A policy selecting the bench binary: 127.0.0.1 allowed, plus nrules-1 other /32 rules."""
    rules = ["    - to: [{cidr: 127.0.0.1/32}]"]
    for i in range(nrules - 1):
        rules.append(f"    - to: [{{cidr: 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32}}]\n"
                     f"      ports: [{{port: 443, protocol: tcp}}]")
    return (f"apiVersion: vigil/v1\nkind: EgressPolicy\nmetadata: {{name: bench-{nrules}}}\nspec:\n"
            f"  mode: enforce\n  allowLoopback: false\n  selector: {{binaries: [\"{exe}\"]}}\n  egress:\n"
            + "\n".join(rules) + "\n")


def nft_ruleset(nrules, use_set):
    """The nftables equivalent: only 127.0.0.1 and nrules-1 other destinations may be reached by the
    bench traffic (scoped to it by uid 0 and destination 127.0.0.1 so the host is unaffected)."""
    others = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(nrules - 1)]
    lines = ["table inet vigil_bench {"]
    if use_set:
        elems = ", ".join(others + ["127.0.0.1"])
        lines += [f"  set allowed {{ type ipv4_addr; elements = {{ {elems} }} }}",
                  "  chain judge {", "    ip daddr @allowed accept", "    reject", "  }"]
    else:
        lines += ["  chain judge {"] + [f"    ip daddr {a} tcp dport 443 accept" for a in others] + [
            "    ip daddr 127.0.0.1 accept", "    reject", "  }"]
    lines += ["  chain output { type filter hook output priority 0; policy accept;",
              "    meta skuid 0 ip daddr 127.0.0.1 tcp flags syn jump judge", "  }", "}"]
    return "\n".join(lines) + "\n"


def latency_round(mode):
    out = subprocess.run([os.path.join(BIN, "connect_latency"), mode, str(EGRESS_CONNECTS)], capture_output=True,
                         text=True)
    median, mean, failures = out.stdout.split()
    if int(failures):
        raise RuntimeError(f"connect_latency {mode}: {failures} connects did not behave as expected")
    return float(median)


def bench_egress():
    exe = os.path.join(BIN, "connect_latency")
    peers = ["none", "observe", "vigil0", "vigil100", "vigil10000", "nft_linear", "nft_set"]
    results = {(p, m): [] for p in peers for m in ("refused", "accepted")}
    compile_ms = {}
    prog_ns = {}  # peer -> [ns per connect4 run] per round
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        stats_before = f.read().strip()
    with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
        f.write("1")
    try:
        return bench_egress_rounds(peers, results, compile_ms, prog_ns, exe)
    finally:
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(stats_before)


def bench_egress_rounds(peers, results, compile_ms, prog_ns, exe):
    for _ in range(EGRESS_ROUNDS):
        for peer in peers:
            agent = None
            if peer == "observe":  # vigild with no policy at all: no egress programs are loaded
                agent = Agent()
                pol = None
            elif peer.startswith("vigil"):
                n = int(peer[5:])
                pol = tempfile.mkdtemp(prefix="vigil-bench-pol-")
                # 0 rules: the programs are attached but no policy selects the bench process.
                with open(os.path.join(pol, "p.yaml"), "w") as f:
                    f.write(egress_policy(n, exe) if n else egress_policy(1, "/nonexistent/binary"))
                t0 = time.monotonic()
                agent = Agent(extra_config=f"policies:\n  dir: {pol}\n  pin_dir: /sys/fs/bpf/vigil-bench\n")
                wait_for(lambda: agent.status()["egress"]["state"] == "enforcing", 60)
                compile_ms[n] = (time.monotonic() - t0) * 1000
            elif peer.startswith("nft"):
                subprocess.run(["nft", "-f", "-"], input=nft_ruleset(10000, peer == "nft_set"), text=True,
                               check=True)
            try:
                for mode in ("refused", "accepted"):
                    results[(peer, mode)].append(latency_round(mode))
                if peer.startswith("vigil"):
                    # eg_connect4 per connect; the DNS programs (F7) run on every packet of the cgroup.
                    for prog in ("eg_connect4", "eg_dns_egress", "eg_dns_ingress"):
                        ns, cnt = prog_runtime(prog)
                        prog_ns.setdefault((peer, prog), []).append(ns / cnt if cnt else 0.0)
            finally:
                if agent:
                    if pol:
                        subprocess.run([os.path.join(BIN, "vigil"), "--socket", agent.sock, "policy", "disable"],
                                       capture_output=True, check=True)
                        shutil.rmtree(pol, ignore_errors=True)
                    agent.stop()
                if peer.startswith("nft"):
                    subprocess.run(["nft", "delete", "table", "inet", "vigil_bench"], check=True)
    return results, compile_ms, prog_ns


def egress_section(results, compile_ms, prog_ns):
    labels = [("none", "no program"), ("observe", "vigild observing, no policy (no egress programs)"),
              ("vigil0", "vigild, programs attached, process not selected (0 rules)"),
              ("vigil100", "vigild, process selected, 100 rules"),
              ("vigil10000", "vigild, process selected, 10,000 rules"),
              ("nft_linear", "nftables, 10,000 rules in one chain"),
              ("nft_set", "nftables, one set of 10,000 addresses")]
    lines = ["", "## Egress enforcement: connect(2) latency (loopback)", "",
             f"`build/bin/connect_latency refused|accepted {EGRESS_CONNECTS}` (connects to 127.0.0.1, timed around "
             f"connect() alone), {EGRESS_ROUNDS} interleaved rounds per peer; each cell is the median over rounds of "
             "the per-round median ns. vigild's policy allows 127.0.0.1 plus N-1 other /32 rules (each its own "
             "rule, port 443/tcp), selected by the bench binary's path; every allowed connect is also reported "
             "to the agent (aggregated there). nftables peers judge the same traffic (uid 0 SYNs to 127.0.0.1) "
             "against the same 10,000 destinations.", "",
             "vigild also observes every connect (its connect tracepoints cost what the churn bench above shows), "
             "so the enforcement's own cost is the difference to the observing-only row: the last two columns.", "",
             "| peer | refused: ns (ratio to no program) | accepted: ns (ratio) | rounds (refused / accepted) | added vs no program "
             "(refused / accepted) | enforcement added vs observing only (refused / accepted) |",
             "|---|---|---|---|---|---|"]
    modes = ("refused", "accepted")
    base = {m: statistics.median(results[("none", m)]) for m in modes}
    obs = {m: statistics.median(results[("observe", m)]) for m in modes}
    for key, label in labels:
        med = {m: statistics.median(results[(key, m)]) for m in modes}
        rounds = " / ".join(", ".join(f"{x:.0f}" for x in results[(key, m)]) for m in modes)
        vs_obs = (" / ".join(f"{med[m] - obs[m]:+.0f}" for m in modes)
                  if key.startswith("vigil") else "")
        lines.append(f"| {label} | {med['refused']:.0f} ({med['refused'] / base['refused']:.2f}×) | "
                     f"{med['accepted']:.0f} ({med['accepted'] / base['accepted']:.2f}×) | {rounds} | "
                     f"{' / '.join(f'{med[m] - base[m]:+.0f}' for m in modes)} | {vs_obs} |")
    lines += ["", "The enforcement program's own run time per connect (kernel.bpf_stats_enabled=1: run_time_ns ÷ run_cnt "
              "of eg_connect4, which includes reporting the verdict to the ring buffer), free of the run-to-run "
              "noise above; and the DNS learning programs' run time per packet (eg_dns_egress: every egress packet "
              "of the cgroup, records queries to a DNS port; eg_dns_ingress: every ingress packet, learns "
              "answers that match a recorded query):", "",
              "| peer | eg_connect4 ns per connect (median) | rounds | eg_dns_egress ns per packet (median) | rounds "
              "| eg_dns_ingress ns per packet (median) | rounds |", "|---|---|---|---|---|---|---|"]
    for key, label in labels:
        if (key, "eg_connect4") in prog_ns:
            cells = [f"{statistics.median(prog_ns[(key, p)]):.0f} | {', '.join(f'{x:.0f}' for x in prog_ns[(key, p)])}"
                     for p in ("eg_connect4", "eg_dns_egress", "eg_dns_ingress")]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Time from starting vigild to enforcing (load, compile, attach, write tables): " +
              ", ".join(f"{n} rules {ms:.0f} ms" for n, ms in sorted(compile_ms.items())) + " (last round)."]
    return lines


# vigild with the five capabilities of the README (no CAP_SYS_ADMIN): TLS uprobes through tracefs.
FIVE_CAPS = ["setpriv", "--bounding-set", "-all,+bpf,+perfmon,+net_admin,+sys_ptrace,+dac_read_search",
             "--inh-caps=-all"]


def bench_tls_uprobe_paths():
    """TLS load with vigild as full root (libbpf's uprobe PMU) and with the five capabilities
    (uprobe_events in tracefs), interleaved: (req/s, agent CPU ns per request, api_calls) each."""
    from vigil_e2e import Nginx
    nginx = Nginx(tls=True)
    url = f"https://127.0.0.1:{nginx.port}/api/bench/1"
    out = {"pmu": [], "tracefs": []}
    try:
        wrk_round(url)
        for i in range(HTTP_ROUNDS):
            for key in (("pmu", "tracefs") if i % 2 == 0 else ("tracefs", "pmu")):
                rps, ns, calls, _, _ = agent_round(url, wrap=FIVE_CAPS if key == "tracefs" else ())
                out[key].append((rps, ns, calls))
    finally:
        nginx.stop()
    return out


def tls_uprobe_section(out):
    med = lambda xs: statistics.median(xs)
    rows = [
        "",
        "## TLS uprobes: libbpf's uprobe PMU (CAP_SYS_ADMIN) vs tracefs uprobe_events (five capabilities)",
        "",
        f"The TLS row's load (`wrk -t1 -c10 -d{HTTP_SECONDS}s`, nginx https), {HTTP_ROUNDS} rounds of each, order "
        "alternating; vigild as full root attaches its TLS uprobes through the uprobe PMU, under "
        "`setpriv --bounding-set -all,+bpf,+perfmon,+net_admin,+sys_ptrace,+dac_read_search` through "
        "tracefs (README \"Privileges\").",
        "",
        "| vigild | req/s (median) | rounds | agent CPU ns/request (median) | rounds | api_call events per request (≈, both sides) |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (("pmu", "full root: uprobe PMU"), ("tracefs", "five capabilities: tracefs uprobes")):
        r = out[key]
        rows.append(f"| {label} | {med([x[0] for x in r]):.0f} | {', '.join(f'{x[0]:.0f}' for x in r)} | "
                    f"{med([x[1] for x in r]):.0f} | {', '.join(f'{x[1]:.0f}' for x in r)} | "
                    f"{', '.join(f'{x[2] / max(1, x[0] * HTTP_SECONDS):.2f}' for x in r)} |")
    ratio = med([x[0] for x in out["tracefs"]]) / med([x[0] for x in out["pmu"]])
    rows += ["", f"tracefs / PMU: {ratio:.3f} of the throughput.", ""]
    return rows


def corpus_section():
    """Issue 29: precision and recall per sensitive-data class on tests/unit/data/sensitive/corpus.tsv,
    and path-template agreement on tests/unit/data/templates/corpus.tsv, as the unit tests that gate
    them print them."""
    def run(test):
        out = subprocess.run([os.path.join(BIN, "vigil_unit_tests"), f"--gtest_filter={test}"],
                             capture_output=True, text=True).stdout.splitlines()
        misses = [l for l in out if "corpus.tsv:" in l]
        return [l for l in out if l.startswith("|")] + ([""] + [f"- {m}" for m in misses] if misses else [])
    return (["", "## Sensitive data classes (corpus)", "",
             "tests/unit/data/sensitive/corpus.tsv, one request body per line, scanned by the agent's Hyperscan "
             "pass and validators; the gate (`SensitiveCorpus.PrecisionAndRecallPerClass`, in `make test`) is "
             "precision >= 0.95 and recall >= 0.90 per class.", ""] + run("SensitiveCorpus.*")
            + ["", "## Path templates (corpus)", "",
               "tests/unit/data/templates/corpus.tsv: each case's paths learnt in order, then each templated "
               "again and compared with the expected template (parameter names aside); the gate "
               "(`TemplateCorpus.AgreementWithTheExpectedTemplates`) holds the share as expected.", ""]
            + run("TemplateCorpus.*"))


def main():
    if os.geteuid() != 0:
        sys.exit("bench: run as root (loads BPF programs)")
    # VIGIL_BENCH_ONLY: a comma-separated list of sections ("capture": the four of issue 13).
    only = os.environ.get("VIGIL_BENCH_ONLY", "")
    chosen = set(only.replace("capture", "connect,http,tls,inference").split(",")) - {""}

    def sel(*names):
        return not chosen or bool(chosen & set(names))
    http_lines = http_section(*bench_http()) if sel("http") else []
    if sel("tls"):
        http_lines += http_section(*bench_http(tls=True))
    if sel("tls", "go_tls"):
        from go_tls import bench_go_tls, go_tls_section
        http_lines += go_tls_section(*bench_go_tls())
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    lines = [
        "# Vigil benchmarks",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- kernel: {platform.release()}; CPU: {cpu} ({os.cpu_count()} cores)",
        f"- commit: {subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}",
        f"- command: `make bench` (bench/run.py; VIGIL_BENCH_ROUNDS={ROUNDS}, VIGIL_BENCH_CONNS={CONNS})"
        + (f", VIGIL_BENCH_ONLY={only}" if only else ""),
    ]
    summary_at = len(lines)
    if sel("connect"):  # a partial run without it leaves the section out, not a table of placeholders
        lines += connect_section(*bench_connect())
    lines += http_lines
    if sel("inference"):
        lines += inference_section()
    if sel("syscalls"):
        lines += syscall_section()
    if sel("micro"):
        lines += micro_section()
    if sel("inventory"):
        lines += inventory_section(bench_inventory_observe())
    if sel("inventory", "corpus"):
        lines += corpus_section()
    if sel("egress"):
        lines += egress_section(*bench_egress())
    if sel("sinks"):
        lines += sinks_section()
    if sel("tls", "tls_caps"):
        lines += tls_uprobe_section(bench_tls_uprobe_paths())
    if sel("sinks", "sinks_e2e"):
        lines += sinks_e2e_section(bench_sinks_e2e())
    lines[summary_at:summary_at] = targets_section()
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    # A partial run (VIGIL_BENCH_ONLY) must not replace the full table.
    path = os.path.join(ROOT, "bench", "results", "partial.md" if only else "latest.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
