#!/usr/bin/env python3
"""Writes the seccomp profile Vigil's container runs under: the container runtime's
own default profile, with bpf(2) allowed to a container that holds CAP_BPF and
perf_event_open(2) to one that holds CAP_PERFMON.

Why: older runtime defaults (Debian 12's containers-common, podman's default here)
allow those two calls only with CAP_SYS_ADMIN, so an agent granted the five
capabilities of the README's table and not CAP_SYS_ADMIN gets EPERM from its first
bpf(2). Newer defaults carry the same two rules; this profile is for the others.
Everything else in the runtime's default stays as it is.

  scripts/seccomp-profile.py [DEFAULT] > vigil-seccomp.json
    DEFAULT   the runtime's default profile (/usr/share/containers/seccomp.json)

For Kubernetes, put the output at /var/lib/kubelet/seccomp/vigil.json on every node
and use the seccomp-localhost overlay (packaging/kubernetes/overlays/seccomp-localhost)."""
import json
import sys

GRANTS = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}


def widen(profile):
    rules = []
    for rule in profile.get("syscalls", []):
        names = rule.get("names", [])
        ours = [n for n in names if n in GRANTS]
        if not ours:
            rules.append(rule)
            continue
        rest = [n for n in names if n not in GRANTS]
        if rest:
            rules.append(dict(rule, names=rest))
        for name in ours:
            # A rule denying the call to a container without CAP_SYS_ADMIN also
            # spares one with the call's own capability; one allowing it with
            # CAP_SYS_ADMIN stays.
            excl = rule.get("excludes", {}).get("caps")
            if rule.get("action") != "SCMP_ACT_ALLOW" and excl:
                rules.append(dict(rule, names=[name], excludes=dict(rule["excludes"], caps=excl + [GRANTS[name]])))
            else:
                rules.append(dict(rule, names=[name]))
    for name, cap in GRANTS.items():
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]},
                      "comment": f"vigil: {name} with {cap} (scripts/seccomp-profile.py)"})
    return dict(profile, syscalls=rules)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/containers/seccomp.json"
    try:
        with open(path) as f:
            profile = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"seccomp-profile: cannot read the runtime's default profile {path}: {e}")
    if "syscalls" not in profile or "defaultAction" not in profile:
        sys.exit(f"seccomp-profile: {path} is not a seccomp profile (no defaultAction/syscalls)")
    json.dump(widen(profile), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
