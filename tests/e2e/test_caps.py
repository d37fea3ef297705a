"""E2E (issue 12): the capabilities vigild needs, found by running it with a reduced
bounding set (setpriv, uid 0 as in the systemd unit and the DaemonSet). With exactly
CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH — no
CAP_SYS_ADMIN — it observes plaintext and TLS (uprobes through tracefs), resolves the
executables of root daemons started before it, and enforces an egress policy. Each
optional capability missing is named at start with what it disables, and vigild runs on;
without CAP_BPF it does not start and says so. tracefs uprobes a SIGKILLed vigild left
are removed by the next start."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from vigil_e2e import BIN_DIR, CURL, Agent, Nginx, require_root, wait_until

# The README's capability table, as setpriv names them.
MINIMAL = ["bpf", "perfmon", "net_admin", "sys_ptrace", "dac_read_search"]
PROBE = os.path.realpath(os.path.join(BIN_DIR, "vigil_egress_probe"))
UPROBE_EVENTS = "/sys/kernel/tracing/uprobe_events"


def setpriv(caps):
    return ["setpriv", "--bounding-set", "-all," + ",".join("+" + c for c in caps), "--inh-caps=-all"]


def probe_policy(name):
    """An enforced policy: vigil_egress_probe may connect to 127.0.0.1:1 only."""
    return f"""apiVersion: vigil/v1
kind: EgressPolicy
metadata: {{name: {name}}}
spec:
  mode: enforce
  allowLoopback: false
  selector: {{binaries: ["{PROBE}"]}}
  egress:
    - {{to: [{{cidr: 127.0.0.1/32}}], ports: [{{port: 1, protocol: tcp}}]}}
"""


def our_uprobes(pid):
    with open(UPROBE_EVENTS) as f:
        return [line for line in f.read().splitlines() if re.match(rf"^[pr]:vigil_{pid}/", line)]


class Capabilities(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if not shutil.which("setpriv"):
            self.fail("setpriv is not installed (util-linux)")
        self.pins = f"/sys/fs/bpf/vigil-e2e-caps-{os.getpid()}"
        self.poldir = tempfile.mkdtemp(prefix="vigil-caps-pol-")
        self.agents = []
        # Started before vigild, as root with every capability: its /proc/<pid>/exe
        # is readable to vigild only with CAP_SYS_PTRACE.
        self.nginx = Nginx(tls=True)

    def tearDown(self):
        for a in self.agents:
            if a.proc and a.proc.proc.poll() is None:
                a.vigil("policy", "disable")
            a.cleanup()
        subprocess.run(["/bin/rm", "-rf", self.pins])
        self.nginx.stop()
        shutil.rmtree(self.poldir, ignore_errors=True)

    def agent(self, caps, policy=False):
        if policy:
            with open(os.path.join(self.poldir, "probe.yaml"), "w") as f:
                f.write(probe_policy("caps-probe"))
        a = Agent(f"""policies:
  dir: {self.poldir}
  pin_dir: {self.pins}
metrics: {{listen: ""}}
""", wrap=setpriv(caps))
        self.agents.append(a)
        return a

    def calls(self, agent, path):
        return [e for e in agent.events() if e["kind"] == "api_call" and e["request"]["path"] == path]

    def curl_tls(self, agent, path):
        subprocess.run([CURL, "-sk", "-o", "/dev/null", f"https://127.0.0.1:{self.nginx.port}{path}"], check=True)
        return wait_until(lambda: len(self.calls(agent, path)) >= 2 and self.calls(agent, path), 10)

    def test_the_minimal_set_runs_everything_without_cap_sys_admin(self):
        a = self.agent(MINIMAL, policy=True).start()
        with open(f"/proc/{a.proc.pid}/status") as f:
            eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", f.read()).group(1), 16)
        self.assertEqual(eff & (1 << 21), 0, "no CAP_SYS_ADMIN")
        self.assertTrue(wait_until(lambda: our_uprobes(a.proc.pid), 10), "TLS uprobes defined in tracefs")
        calls = self.curl_tls(a, "/api/caps-min")
        self.assertTrue(calls, "both sides of the TLS call: " + a.log())
        server = [c for c in calls if c["role"] == "server"][0]
        self.assertTrue(server["tls"])
        self.assertEqual(server["process"]["exe"], "/usr/sbin/nginx")
        self.assertNotIn("is missing", a.log())
        self.assertTrue(wait_until(lambda: a.status()["egress"]["state"] == "enforcing", 10), a.log())
        r = subprocess.run([PROBE, "tcp", "127.0.0.1", "2"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3, "denied in the kernel (EPERM): " + r.stdout + r.stderr)
        self.assertTrue(wait_until(lambda: [e for e in a.events() if e["kind"] == "egress"
                                            and e["verdict"] == "deny"], 10))
        pid = a.proc.pid
        a.vigil("policy", "disable")
        self.assertEqual(a.stop(), 0)
        self.assertEqual(our_uprobes(pid), [], "the tracefs uprobes go with vigild")

    def test_each_missing_capability_is_named_and_vigild_runs_on(self):
        a = self.agent([c for c in MINIMAL if c != "net_admin"], policy=True).start()
        self.assertTrue(wait_until(lambda: "enforcing needs CAP_NET_ADMIN" in a.log(), 10), a.log())
        self.assertIn("CAP_NET_ADMIN is missing: egress policies are not enforced", a.log())
        self.assertTrue(self.curl_tls(a, "/api/caps-no-net-admin"), "observation runs: " + a.log())
        a.stop()

        b = self.agent([c for c in MINIMAL if c != "sys_ptrace"]).start()
        self.assertIn("CAP_SYS_PTRACE is missing", b.log())
        calls = self.curl_tls(b, "/api/caps-no-ptrace")
        self.assertTrue(calls, b.log())
        server = [c for c in calls if c["role"] == "server"][0]
        self.assertEqual(server["process"]["exe"], "", "nginx's exe is out of reach without CAP_SYS_PTRACE")
        b.stop()

        c = self.agent([c for c in MINIMAL if c != "dac_read_search"]).start()
        self.assertIn("CAP_DAC_READ_SEARCH is missing", c.log())
        c.stop()

    def test_without_cap_bpf_it_does_not_start_and_says_why(self):
        a = self.agent([c for c in MINIMAL if c != "bpf"])
        with self.assertRaises(RuntimeError):
            a.start()
        self.assertEqual(a.proc.proc.wait(10), 1)
        self.assertIn("vigild needs CAP_BPF and CAP_PERFMON", a.log())
        self.assertIn("CAP_BPF is missing", a.log())

    def test_uprobes_a_sigkilled_vigild_left_in_tracefs_are_removed_at_the_next_start(self):
        a = self.agent(MINIMAL).start()
        self.assertTrue(wait_until(lambda: our_uprobes(a.proc.pid), 10))
        dead = a.proc.pid
        a.stop(signal.SIGKILL)
        self.assertTrue(our_uprobes(dead), "a SIGKILL leaves them")
        b = self.agent(MINIMAL).start()
        self.assertTrue(wait_until(lambda: not our_uprobes(dead), 10), b.log())
        self.assertIn("removed", b.log())
        self.assertTrue(our_uprobes(b.proc.pid))
        b.stop()


if __name__ == "__main__":
    unittest.main()
