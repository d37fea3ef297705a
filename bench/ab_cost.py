#!/usr/bin/env python3
"""Per-request cost of two vigild builds, side by side: for each scenario (nginx +
wrk, plaintext and TLS) the builds run in alternating order, and each round
reports throughput, the BPF run time of the agent's programs per request
(kernel.bpf_stats_enabled) and the agent's CPU per request.

  bench/ab_cost.py OLD_BUILD_DIR NEW_BUILD_DIR [rounds]

Use it to check that a change to the per-event path costs what it should: the
medians and every round go to stdout as a Markdown table."""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Agent, wrk_round, proc_cpu_seconds, ProgCost, BpfStats)
from vigil_e2e import Nginx  # noqa: E402  (harness.py puts tests/e2e on the path)


def measure(bin_dir, url):
    """One wrk round with a fresh agent: (req/s, BPF ns/req, agent CPU ns/req, {program: ns per request})."""
    harness.BIN = bin_dir
    r = harness.vigild_round(lambda: harness.wrk_round(url), drain=1.5)
    reqs = r["requests"]
    return r["rps"], r["bpf_ns"] / reqs, r["cpu"] * 1e9 / reqs, {k: v / reqs for k, v in r["per_program"].items()}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    builds = {"A": os.path.join(sys.argv[1], "bin"), "B": os.path.join(sys.argv[2], "bin")}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    lines = [f"A = {sys.argv[1]}, B = {sys.argv[2]}; {rounds} rounds per scenario, order alternating; "
             f"`wrk -t1 -c10 -d{harness.HTTP_SECONDS}s` against one nginx worker.", "",
             "| scenario | build | req/s (median) | BPF ns/req (median) | agent CPU ns/req (median) | rounds: req/s, BPF, CPU |",
             "|---|---|---|---|---|---|"]
    per_program = []
    with harness.BpfStats():
        for tls in (False, True):
            nginx = Nginx(tls=tls)
            url = f"{'https' if tls else 'http'}://127.0.0.1:{nginx.port}/api/bench/1"
            try:
                harness.wrk_round(url)  # warm-up
                res = {"A": [], "B": []}
                for r in range(rounds):
                    for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                        res[side].append(measure(builds[side], url))
            finally:
                nginx.stop()
            name = "TLS" if tls else "plaintext"
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
