#!/usr/bin/env python3
"""Per-request cost of two vigild builds, side by side: for each scenario (nginx +
wrk, plaintext and TLS; connection churn) the builds run in alternating order, and each round
reports throughput, the BPF run time of the agent's programs per request
(kernel.bpf_stats_enabled) and the agent's CPU per request.

  bench/ab_cost.py OLD_BUILD_DIR NEW_BUILD_DIR [rounds] [plaintext,TLS,churn]

Use it to check that a change to the per-event path costs what it should: the
medians and every round go to stdout as a Markdown table."""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Agent, wrk_round, proc_cpu_seconds, ProgCost, BpfStats)
from vigil_e2e import Nginx  # noqa: E402  (harness.py puts tests/e2e on the path)


def measure(bin_dir, load):
    """One round of `load` with a fresh agent: (req/s, BPF ns/req, agent CPU ns/req, {program: ns per request})."""
    harness.BIN = bin_dir
    r = harness.vigild_round(load, drain=1.5)
    reqs = r["requests"]
    return r["rps"], r["bpf_ns"] / reqs, r["cpu"] * 1e9 / reqs, {k: v / reqs for k, v in r["per_program"].items()}


def churn_round(conns=20000):
    """connect/accept/1-byte echo/close, loopback (bench/connect_loop): (connections, connections/s)."""
    out = subprocess.run([os.path.join(BUILD_BIN, "connect_loop"), str(conns)], capture_output=True, text=True,
                         check=True)
    return conns, 1e9 / float(out.stdout.strip())


BUILD_BIN = harness.BIN  # this checkout's load generators, whichever vigild is measured


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    builds = {"A": os.path.join(sys.argv[1], "bin"), "B": os.path.join(sys.argv[2], "bin")}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    scenarios = sys.argv[4].split(",") if len(sys.argv) > 4 else ["plaintext", "TLS", "churn"]
    lines = [f"A = {sys.argv[1]}, B = {sys.argv[2]}; {rounds} rounds per scenario, order alternating; "
             f"`wrk -t1 -c10 -d{harness.HTTP_SECONDS}s` against one nginx worker.", "",
             "A request of the churn scenario is one connection (`connect_loop 20000`).", "",
             "| scenario | build | req/s (median) | BPF ns/req (median) | agent CPU ns/req (median) | rounds: req/s, BPF, CPU |",
             "|---|---|---|---|---|---|"]
    per_program = []
    with harness.BpfStats():
        for name in scenarios:
            nginx = Nginx(tls=name == "TLS") if name != "churn" else None
            if nginx:
                url = f"{'https' if name == 'TLS' else 'http'}://127.0.0.1:{nginx.port}/api/bench/1"
                load = lambda: harness.wrk_round(url)  # noqa: E731
            else:
                load = churn_round
            try:
                load()  # warm-up
                res = {"A": [], "B": []}
                for r in range(rounds):
                    for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                        res[side].append(measure(builds[side], load))
            finally:
                if nginx:
                    nginx.stop()
            for side, rs in res.items():
                med = [statistics.median(x[k] for x in rs) for k in range(3)]
                detail = "; ".join(f"{x[0]:.0f}, {x[1]:.0f}, {x[2]:.0f}" for x in rs)
                lines.append(f"| {name} | {side} | {med[0]:.0f} | {med[1]:.0f} | {med[2]:.0f} | {detail} |")
                progs = {k: statistics.median(x[3].get(k, 0) for x in rs) for k in rs[0][3]}
                top = sorted(progs.items(), key=lambda kv: -kv[1])[:4]
                per_program.append(f"- {name} {side}: " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    lines += ["", "Median ns of BPF run time per request of the costliest programs:", ""] + per_program
    print("\n".join(lines))


if __name__ == "__main__":
    main()
