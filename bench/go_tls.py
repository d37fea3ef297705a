"""TLS observe with a Go client (crypto/tls inside the executable, no libssl): the
tlspeer load generator (tests/e2e/go) against nginx https, with no agent, with
vigild, and with bpftrace counting the same probes, interleaved (harness.observe_rounds).

vigild probes crypto/tls.(*Conn).Write and Read at their entries and each RET
of Read. Debian's bpftrace 0.17 cannot attach a uprobe at an offset inside a
function, so the counting peer is bpftrace (the tracepoints and nginx's libssl
uprobes) beside build/bin/uprobe_count (a one-counter program at the Go sites).
The sites are found with the Go toolchain (`go tool nm`, `go tool objdump`), not
with vigild's own code."""
import os
import re
import statistics
import subprocess

from harness import (AGENT_TRACEPOINTS, BIN, BPFTRACE_ALL_AGENT_PROBES_TLS, HTTP_ROUNDS, HTTP_SECONDS,
                     CountingPeer, cost_rows, observe_rounds, peer_rows)

GO_PEER = os.path.join(os.path.dirname(BIN), "go", "tlspeer")
GO_CONNS = 10  # as wrk -c10


def file_offset(binary, vaddr):
    """The file offset of a virtual address, from the ELF program headers."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for m in re.finditer(r"^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+\S+\s+(0x[0-9a-f]+)", out, re.M):
        off, va, size = (int(x, 16) for x in m.groups())
        if va <= vaddr < va + size:
            return vaddr - va + off
    raise RuntimeError(f"{binary}: no LOAD segment holds {vaddr:#x}")


def go_tls_sites(binary):
    """(name, file offset) of every site vigild probes in a Go executable."""
    go = ["go", "tool"]
    nm = subprocess.run(go + ["nm", binary], capture_output=True, text=True, check=True).stdout
    addr = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("crypto/tls.(*Conn).Write", "crypto/tls.(*Conn).Read"):
            addr[parts[2]] = int(parts[0], 16)
    dis = subprocess.run(go + ["objdump", "-s", r"^crypto/tls\.\(\*Conn\)\.Read$", binary],
                         capture_output=True, text=True, check=True).stdout
    rets = [int(m.group(1), 16) for m in re.finditer(r"\s(0x[0-9a-f]+)\s+c3\s+RET\b", dis)]
    if len(addr) != 2 or not rets:
        raise RuntimeError(f"{binary}: crypto/tls.(*Conn).Write/Read or Read's RETs not found")
    sites = [("go_write", addr["crypto/tls.(*Conn).Write"]), ("go_read", addr["crypto/tls.(*Conn).Read"])]
    sites += [(f"go_read_ret{i}", a) for i, a in enumerate(rets)]
    return [(name, file_offset(binary, a)) for name, a in sites]


def load_round(url):
    out = subprocess.run([GO_PEER, "load", url, str(HTTP_SECONDS), str(GO_CONNS)], capture_output=True, text=True,
                         check=True).stdout.split()
    reqs, failed = int(out[0]), int(out[1])
    if failed:
        raise RuntimeError(f"tlspeer load: {failed} requests failed")
    return reqs, reqs / HTTP_SECONDS


def bench_go_tls():
    from vigil_e2e import Nginx
    nginx = Nginx(tls=True)
    url = f"https://127.0.0.1:{nginx.port}/api/bench/1"
    sites = go_tls_sites(GO_PEER)
    offsets = (GO_PEER, [off for _, off in sites])
    try:
        results, agent_stats, hits, cost = observe_rounds(
            lambda: load_round(url), lambda: CountingPeer(BPFTRACE_ALL_AGENT_PROBES_TLS, offsets), levels=["all"])
    finally:
        nginx.stop()
    return results, agent_stats, hits, cost, len(sites)


def go_tls_section(results, agent_stats, hits, cost, nsites):
    med = {k: statistics.median(v) for k, v in results.items()}
    lines = [
        "",
        "## TLS HTTP observe, Go client (tlspeer load → nginx https, keep-alive, loopback)",
        "",
        f"`build/go/tlspeer load https://127.0.0.1:PORT/api/bench/1 {HTTP_SECONDS} {GO_CONNS}` ({GO_CONNS} "
        "goroutines, each a keep-alive HTTP/1.1 client of Go's net/http and crypto/tls; Debian's go1.19) against one "
        f"nginx worker, {HTTP_ROUNDS} interleaved rounds per peer; vigild ships every event to a file sink on /dev/null. "
        "Both sides are TLS: the Go client's plaintext at crypto/tls, nginx's at libssl.",
        "",
    ]
    lines += peer_rows(results, "req/s", (
        ("none", "no agent"), ("vigild", "vigild observing"),
        ("bpftrace", f"bpftrace counting the same {AGENT_TRACEPOINTS} tracepoints, 6 libssl uprobes and the Go "
                     f"executable's {nsites} crypto/tls sites")))
    lines += [
        "",
        f"vigild vs bpftrace (same probes): {med['vigild'] / med['bpftrace']:.3f} of its throughput.",
        "",
        "| vigild round | requests | api_call events | completeness (÷ 2 sides) | CPU % | peak RSS MiB | lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, s in enumerate(agent_stats["vigild"]):
        lines.append(f"| {i + 1} | {s['requests']} | {s['api_calls']} | {s['api_calls'] / (2 * s['requests']):.4f} | "
                     f"{s['cpu_pct']:.1f} | {s['rss_kib'] / 1024:.1f} | {s['lost'] or 'none'} |")
    lines += ["", "uprobe hits per request (both sides together, counted by the bpftrace peer): " +
              ", ".join(f"{h:.2f}" for h in hits) +
              ". The Go side: Write's entry, and Read's entry and one RET per Read call; nginx's side as in the "
              "TLS row above.", "",
              "Cost per request (same rounds, measured as in the TLS row):", ""]
    lines += cost_rows(cost)
    return lines
