"""E2E (issue 12): the systemd unit (packaging/systemd/vigil.service). `systemd-analyze
verify` accepts it and `systemd-analyze security --offline=true` rates its exposure (the
README records the figure); its capabilities are the five of the README's table. This
machine's PID 1 is not systemd, so vigild is started as the unit starts it: the same
arguments, uid 0 with the unit's CapabilityBoundingSet (setpriv), NOTIFY_SOCKET at a
socket this test reads and WATCHDOG_USEC set. It says READY=1 with a STATUS line once its
programs are attached, pings the watchdog, says RELOADING=1 / READY=1 around a SIGHUP and
STOPPING=1 on SIGTERM; in between it captures traffic and enforces a policy with only
those capabilities. (The unit's seccomp filter and namespaces need systemd itself.)"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from test_caps import MINIMAL, PROBE, probe_policy, setpriv
from vigil_e2e import BIN_DIR, CURL, Agent, free_port, http_server, require_root, wait_until

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
UNIT = os.path.join(ROOT, "packaging/systemd/vigil.service")
PACKAGED_CONFIG = os.path.join(ROOT, "packaging/vigil.yaml")
MAX_EXPOSURE = 3.5


def unit_settings():
    """{key: [values]} of the unit's [Service] section."""
    out = {}
    section = None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def local_unit(d):
    """The unit with the installed paths pointed at this build."""
    with open(UNIT) as f:
        text = f.read()
    text = text.replace("/usr/sbin/vigild", os.path.realpath(os.path.join(BIN_DIR, "vigild")))
    text = text.replace("/etc/vigil/vigil.yaml", os.path.realpath(PACKAGED_CONFIG))
    path = os.path.join(d, "vigil.service")
    with open(path, "w") as f:
        f.write(text)
    return path


class SystemdUnit(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-systemd-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_the_unit_verifies_and_its_exposure_is_low(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze is not installed (the systemd package)")
        unit = local_unit(self.dir)
        r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "no warnings")
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for vigil.service: ([0-9.]+)", r.stdout)
        self.assertTrue(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)
        print(f"systemd-analyze security exposure: {m.group(1)}")

    def test_capabilities_are_the_readme_table(self):
        s = unit_settings()
        want = sorted("CAP_" + c.upper() for c in MINIMAL)
        self.assertEqual(sorted(" ".join(s["CapabilityBoundingSet"]).split()), want)
        self.assertEqual(sorted(" ".join(s["AmbientCapabilities"]).split()), want)
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["ExecStart"], ["/usr/sbin/vigild --config /etc/vigil/vigil.yaml"])
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        for cap in want:
            self.assertIn(f"| `{cap}` |", readme)
        self.assertIn("--bounding-set -all," + ",".join("+" + c for c in MINIMAL), readme)

    def test_started_as_the_unit_starts_it_it_notifies_and_works(self):
        require_root(self)
        s = unit_settings()
        caps = [c[4:].lower() for c in " ".join(s["CapabilityBoundingSet"]).split()]
        notify_path = os.path.join(self.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(0.2)
        self.addCleanup(sock.close)
        got = []

        def messages():
            while True:
                try:
                    got.append(sock.recv(4096).decode())
                except (socket.timeout, BlockingIOError):
                    return got

        def said(state):
            return any(state in m.split("\n") for m in messages())

        pins = f"/sys/fs/bpf/vigil-e2e-systemd-{os.getpid()}"
        poldir = os.path.join(self.dir, "policies")
        os.makedirs(poldir)
        self.addCleanup(subprocess.run, ["/bin/rm", "-rf", pins])
        agent = Agent(f"""policies:
  dir: {poldir}
  pin_dir: {pins}
metrics: {{listen: ""}}
""", wrap=setpriv(caps), env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1000000"})
        self.addCleanup(agent.cleanup)
        agent.start()
        self.assertTrue(wait_until(lambda: said("READY=1"), 20), got)
        ready = [m for m in got if "READY=1" in m][0]
        self.assertRegex(ready, r"STATUS=\d+ programs attached, \d+ events shipped")
        self.assertTrue(wait_until(lambda: said("WATCHDOG=1"), 5), "watchdog pings: " + repr(got))

        port = free_port()
        srv, root = http_server(port)
        self.addCleanup(lambda: (srv.stop(), shutil.rmtree(root, ignore_errors=True)))
        subprocess.run([CURL, "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/systemd-unit"], check=True)
        self.assertTrue(wait_until(lambda: [e for e in agent.events() if e["kind"] == "api_call"
                                            and e["request"]["path"] == "/systemd-unit"], 10), agent.log())

        with open(os.path.join(poldir, "probe.yaml"), "w") as f:
            f.write(probe_policy("systemd-probe"))
        got.clear()
        agent.proc.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: said("RELOADING=1"), 10), got)
        self.assertTrue(wait_until(lambda: said("READY=1"), 10), got)
        self.assertTrue(wait_until(lambda: agent.status()["egress"]["state"] == "enforcing", 10), agent.log())
        r = subprocess.run([PROBE, "tcp", "127.0.0.1", "2"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 3, "denied in the kernel: " + r.stdout + r.stderr)
        agent.vigil("policy", "disable")

        got.clear()
        self.assertEqual(agent.stop(), 0)
        self.assertTrue(said("STOPPING=1"), got)
        self.assertNotIn("is missing", agent.log())


if __name__ == "__main__":
    unittest.main()
