"""The Kustomize base and overlays (packaging/kubernetes/) rendered with
`kubectl kustomize`, and what the tests read out of them."""
import os
import re
import shutil
import subprocess

import yaml

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "../.."))
KUSTOMIZE = os.path.join(ROOT, "packaging/kubernetes")
UNIT = os.path.join(ROOT, "packaging/systemd/vigil.service")


def kubectl():
    return shutil.which("kubectl")


def render(variant="base"):
    """The objects `kubectl kustomize` renders for base or overlays/<name>."""
    where = os.path.join(KUSTOMIZE, variant if variant == "base" else f"overlays/{variant}")
    r = subprocess.run([kubectl(), "kustomize", where], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"kubectl kustomize {where}: {r.stderr}")
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"].startswith(name))]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} {kind} objects named {name or '*'}")
    return found[0]


def agent_container(objects):
    return one(objects, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]


def unit_capabilities():
    """CapabilityBoundingSet= of the systemd unit, without the CAP_ prefix."""
    with open(UNIT) as f:
        m = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(), re.M)
    return sorted(c.removeprefix("CAP_") for c in m.group(1).split())
