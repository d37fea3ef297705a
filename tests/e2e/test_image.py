"""E2E (issue 12): the container image. scripts/build-image.sh builds it with podman (or
docker) from the .deb `make package` made (--prebuilt: the image's runtime stage; `make
image` compiles in its build stage instead); the runtime stage has no compiler and no
-dev package; the image runs with exactly the DaemonSet's securityContext, environment
and mounts (read from the rendered Kustomize base, not restated here): the five
capabilities and no other, the node's PID namespace, no new privileges, a read-only root,
the hostPaths. /readyz answers through the published metrics port, a curl on the host
appears as an api_call in the container's log with the node name the downward API would
give, and `vigil` on the host talks to it through the /run/vigil hostPath."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import k8s_manifests as k8s
from vigil_e2e import CURL, REQUIRE_BPF, VIGIL, cgroup2_root, free_port, http_server, require_root, wait_until

ROOT = k8s.ROOT
BUILD_DIR = os.path.realpath(os.path.join(os.environ.get("VIGIL_BIN_DIR", "../../build/bin"), ".."))
NODE = "vigil-e2e-node"
CAP_SYS_RESOURCE = 24


def engine():
    """podman, else a docker whose daemon answers; None when neither is installed."""
    if shutil.which("podman"):
        return "podman"
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    return None


def sandbox_flags():
    """Where the engine itself lacks CAP_SYS_RESOURCE (this machine's sandbox), the
    runtime cannot raise the container's rlimits to the engine's defaults: ask for
    what the host already has."""
    with open("/proc/self/status") as f:
        eff = int(re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)
    if eff & (1 << CAP_SYS_RESOURCE):
        return []
    nofile = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=32768:32768"]


def default_seccomp_needs_sys_admin(path="/usr/share/containers/seccomp.json"):
    """True when the runtime's default profile allows bpf(2) only with CAP_SYS_ADMIN."""
    try:
        with open(path) as f:
            rules = json.load(f)["syscalls"]
    except (OSError, ValueError, KeyError):
        return False
    allowed = [r.get("includes", {}).get("caps", []) for r in rules
               if "bpf" in r.get("names", []) and r.get("action") == "SCMP_ACT_ALLOW"]
    return all("CAP_SYS_ADMIN" in caps for caps in allowed) and bool(allowed)


class Image(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.engine = engine()
        if not self.engine:
            self.skipTest("no container engine: neither podman nor a running docker is installed "
                          "(scripts/install-deps.sh installs podman)")
        if not k8s.kubectl():
            msg = "kubectl is not installed (scripts/install-deps.sh installs kubernetes-client)"
            if REQUIRE_BPF:
                self.fail(msg)
            self.skipTest(msg)
        self.dir = tempfile.mkdtemp(prefix="vigil-image-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.name = f"vigil-e2e-{os.getpid()}"

    def run_engine(self, *args, timeout=120, check=True):
        r = subprocess.run([self.engine, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            self.assertEqual(r.returncode, 0, f"{self.engine} {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    def build(self):
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            version = re.search(r"^project\(vigil VERSION ([0-9.]+)", f.read(), re.M).group(1)
        deb = os.path.join(ROOT, "build", f"vigil_{version}_amd64.deb")
        if os.path.realpath(os.path.join(ROOT, "build")) != BUILD_DIR:
            self.skipTest(f"the image's prebuilt stage takes the .deb from {ROOT}/build, not {BUILD_DIR}")
        if not os.path.exists(deb):
            r = subprocess.run(["cpack", "-G", "DEB"], cwd=BUILD_DIR, capture_output=True, text=True, timeout=300)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run([os.path.join(ROOT, "scripts/build-image.sh"), "--prebuilt"], capture_output=True,
                           text=True, timeout=1200)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        engine, tag = r.stdout.strip().splitlines()[-1].split()
        self.assertEqual(engine, self.engine)
        return version, tag

    def container_args(self, objects, image):
        """The engine's run flags for the DaemonSet's container, field by field."""
        pod = k8s.one(objects, "DaemonSet")["spec"]["template"]["spec"]
        c = pod["containers"][0]
        sc = c["securityContext"]
        self.assertFalse(sc["privileged"])
        args = ["run", "-d", "--name", self.name, "--cap-drop=ALL"]
        args += [f"--cap-add={cap}" for cap in sc["capabilities"]["add"]]
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        if pod.get("hostPID"):
            args.append("--pid=host")
        # This host's cgroups are hybrid (v1 controllers), where the engines share the
        # host's cgroup namespace; a kubelet on a cgroup2 node gives the pod its own.
        args.append("--cgroupns=host")
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if sc.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        args += ["--user", str(sc["runAsUser"])]
        seccomp = sc["seccompProfile"]
        if seccomp["type"] == "Localhost":
            profile = os.path.join(self.dir, seccomp["localhostProfile"])
            with open(profile, "w") as f:
                subprocess.run([os.path.join(ROOT, "scripts/seccomp-profile.py")], stdout=f, check=True)
            args += ["--security-opt", f"seccomp={profile}"]
        if os.path.exists("/sys/module/apparmor/parameters/enabled") and sc["appArmorProfile"]["type"] == "Unconfined":
            args += ["--security-opt", "apparmor=unconfined"]
        limits = c["resources"]["limits"]
        args += ["--memory", limits["memory"].replace("Mi", "m"), "--cpus", limits["cpu"]]
        for e in c["env"]:
            self.assertEqual(e["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName", e["name"])
            args += ["-e", f"{e['name']}={NODE}"]
        self.metrics_port = free_port()
        for p in c["ports"]:
            args += ["-p", f"127.0.0.1:{self.metrics_port}:{p['containerPort']}"]

        volumes = {v["name"]: v for v in pod["volumes"]}
        configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
        self.host = {}  # hostPath -> where this test puts it
        for m in c["volumeMounts"]:
            v = volumes[m["name"]]
            opts = ["ro"] if m.get("readOnly") else []
            if "configMap" in v:
                src = os.path.join(self.dir, m["name"])
                os.makedirs(src)
                for key, text in (configmaps[v["configMap"]["name"]].get("data") or {}).items():
                    with open(os.path.join(src, key), "w") as f:
                        f.write(self.adapt_config(text) if key == "vigil.yaml" else text)
            elif "hostPath" in v:
                path = v["hostPath"]["path"]
                if path == "/sys/fs/cgroup":
                    src = cgroup2_root()
                elif path.startswith("/sys/"):
                    src = path
                else:  # this host's own /var/lib/vigil, /var/log/vigil and /run/vigil stay untouched
                    src = os.path.join(self.dir, path.strip("/").replace("/", "-"))
                    os.makedirs(src)
                self.host[path] = src
                prop = {"HostToContainer": "rslave", "Bidirectional": "rshared"}.get(m.get("mountPropagation"))
                opts += [prop] if prop else []
            elif "emptyDir" in v:
                args += ["--tmpfs", m["mountPath"]]
                continue
            else:
                self.fail(f"volume {m['name']}: a kind this test cannot map")
            args += ["-v", f"{src}:{m['mountPath']}" + (":" + ",".join(opts) if opts else "")]
        return args + sandbox_flags() + [image] + c["args"]

    def adapt_config(self, text):
        """The ConfigMap's vigil.yaml with this test's own pin directory (the node's
        /sys/fs/bpf/vigil is not the test's to replace)."""
        self.pins = f"/sys/fs/bpf/vigil-e2e-{os.getpid()}"
        self.addCleanup(shutil.rmtree, self.pins, True)
        self.assertIn("pin_dir: /sys/fs/bpf/vigil\n", text)
        return text.replace("pin_dir: /sys/fs/bpf/vigil\n", f"pin_dir: {self.pins}\n")

    def logs(self):
        r = self.run_engine("logs", self.name, check=False)
        return r.stdout, r.stderr

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except OSError:
            return None, ""

    def test_image_runs_with_the_daemonsets_security_context(self):
        version, tag = self.build()
        # The runtime stage: the binaries, no toolchain, no -dev package.
        r = self.run_engine("run", "--rm", *sandbox_flags(), "--entrypoint", "/bin/sh", tag, "-c",
                            "/usr/sbin/vigild --version; for t in cc c++ gcc clang-19 cmake make; do "
                            "command -v $t; done; dpkg-query -W -f='${Package}\\n' | grep -- '-dev$'; true")
        self.assertEqual(r.stdout.strip(), f"vigild {version}", r.stderr)

        variant = "seccomp-localhost" if default_seccomp_needs_sys_admin() else "base"
        objects = k8s.render(variant)
        self.assertEqual(k8s.agent_container(objects)["image"], tag)
        args = self.container_args(objects, tag)
        self.addCleanup(self.run_engine, "rm", "-f", "-t", "10", self.name, check=False)
        self.run_engine(*args)

        ready = wait_until(lambda: self.http("/readyz")[0] == 200
                           or self.run_engine("inspect", "-f", "{{.State.Running}}", self.name,
                                              check=False).stdout.strip() == "false", 60, 0.5)
        out, err = self.logs()
        self.assertTrue(ready and self.http("/readyz")[0] == 200, f"not ready: {err}")
        self.assertEqual(self.http("/healthz")[0], 200)
        self.assertIn("programs attached", err)
        self.assertNotIn("error", err.lower(), err)

        port = free_port()
        server, root = http_server(port)
        self.addCleanup(shutil.rmtree, root, True)
        self.addCleanup(server.stop)
        marker = f"/from-the-host-{os.getpid()}"
        subprocess.run([CURL, "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}{marker}"], check=True, timeout=10)

        def api_call():
            for line in self.logs()[0].splitlines():
                if line.startswith("{"):
                    e = json.loads(line)
                    if (e["kind"] == "api_call" and e["process"]["comm"] == "curl"
                            and e["request"]["path"] == marker):
                        return e
            return None
        e = wait_until(api_call, 20, 0.5)
        self.assertIsNotNone(e, self.logs()[1][-3000:])
        self.assertEqual(e["node"], NODE)
        self.assertEqual(e["response"]["status"], 404)
        self.assertEqual(e["conn"]["remote"]["port"], port)

        # The control socket through the /run/vigil hostPath: `vigil` on the node.
        sock = os.path.join(self.host["/run/vigil"], "vigil.sock")
        st = subprocess.run([VIGIL, "--socket", sock, "status", "-o", "json"], capture_output=True, text=True,
                            timeout=10)
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertEqual(json.loads(st.stdout)["node"], NODE)
        status, metrics = self.http("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("vigil_events_total", metrics)
        # The chained file sink on the /var/log/vigil hostPath.
        with open(os.path.join(self.host["/var/log/vigil"], "events.jsonl")) as f:
            self.assertIn(marker, f.read())

        self.run_engine("stop", "-t", "10", self.name)
        state = self.run_engine("inspect", "-f", "{{.State.ExitCode}}", self.name).stdout.strip()
        self.assertEqual(state, "0", self.logs()[1][-2000:])
        with open("/sys/kernel/tracing/uprobe_events") as f:
            self.assertNotIn("vigil", f.read(), "the container's TLS uprobes were removed when it stopped")


if __name__ == "__main__":
    unittest.main()
