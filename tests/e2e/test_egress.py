"""E2E (issue 4): egress policies enforced by the kernel through vigild.

Every restricted process runs in a child cgroup the test creates (or is curl,
selected by binary, for the new-user walk-through); all traffic stays on
127.0.0.0/8. Each test removes its pins and cgroup when it ends."""
import json
import os
import random
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from vigil_e2e import VIGIL, Agent, Process, cgroup2_root, disable_and_unpin, free_port, http_server, require_root, wait_until

PY = "/usr/bin/python3"


def in_cgroup(path):
    def move():
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    return move


# A client run inside the test cgroup: resolves NAME through the DNS server at
# 127.0.0.1:DNSPORT (a raw query, so nothing else is involved), then connects.
CLIENT = r'''
import errno, json, socket, struct, sys, time
def resolve(name, port):
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, ("127.0.0.1", port))
    data, _ = s.recvfrom(2048)
    an = struct.unpack(">H", data[6:8])[0]
    off = 12
    while data[off]: off += data[off] + 1
    off += 5
    for _ in range(an):
        off += 2 if data[off] & 0xC0 == 0xC0 else 0
        typ, _, ttl, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        if typ == 1: return socket.inet_ntoa(data[off:off + 4])
        off += rdlen
    return None
def connect(addr, port):
    s = socket.socket()
    try:
        s.connect((addr, port)); return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
out = []
for step in sys.argv[1:]:
    kind, arg = step.split("=", 1)
    if kind == "resolve":
        name, port = arg.split(":"); out.append(resolve(name, int(port)))
    elif kind == "connect":
        addr, port = arg.rsplit(":", 1); out.append(connect(addr, int(port)))
    elif kind == "sleep":
        time.sleep(float(arg)); out.append("slept")
print(json.dumps(out))
'''

# Connects to ADDR:PORT in a loop until killed; counts successes and attempts.
LOOP = r'''
import signal, socket, sys, time
ok = tried = 0
def done(*_):
    print(f"{ok} {tried}", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    s = socket.socket()
    try:
        s.connect((sys.argv[1], int(sys.argv[2]))); ok += 1
    except OSError:
        pass
    finally:
        s.close()
    tried += 1
    time.sleep(0.002)
'''


class EgressE2E(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.cleanups = []
        tag = f"{os.getpid()}-{random.randrange(1 << 30)}"
        self.cg_rel = f"/vigil-e2e-{tag}"
        self.cg = cgroup2_root() + self.cg_rel
        os.makedirs(self.cg)
        self.pins = f"/sys/fs/bpf/vigil-e2e-{tag}"
        self.poldir = tempfile.mkdtemp(prefix="vigil-pol-")
        self.dns_port = free_port()
        self.agent = None

    def tearDown(self):
        disable_and_unpin(self.agent, self.pins)
        for fn in reversed(self.cleanups):
            fn()
        shutil.rmtree(self.poldir, ignore_errors=True)
        if os.path.isdir(self.cg):
            os.rmdir(self.cg)

    def start_agent(self):
        self.agent = Agent(f"""policies:
  dir: {self.poldir}
  pin_dir: {self.pins}
  dns_ports: [{self.dns_port}]
  dns_min_ttl: 1
""")
        self.agent.start()
        return self.agent

    def policy(self, name, body, mode="enforce", selector=None, loopback="false"):
        selector = selector or f'cgroups: ["{self.cg_rel}"]'
        return f"""apiVersion: vigil/v1
kind: EgressPolicy
metadata: {{name: {name}}}
spec:
  mode: {mode}
  selector: {{{selector}}}
  allowLoopback: {loopback}
  egress:
{body}
"""

    def write(self, name, text, where=None):
        path = os.path.join(where or tempfile.gettempdir(), name)
        with open(path, "w") as f:
            f.write(text)
        if where is None:
            self.cleanups.append(lambda: os.path.exists(path) and os.unlink(path))
        return path

    def server(self, addr):
        port = free_port(addr=addr)
        p, root = http_server(port, bind=addr)
        self.cleanups.append(lambda: (p.stop(), shutil.rmtree(root, ignore_errors=True)))
        return port

    def run_client(self, *steps):
        out = subprocess.run([PY, "-c", CLIENT, *steps], preexec_fn=in_cgroup(self.cg), capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def egress_events(self):
        return [e for e in self.agent.events() if e["kind"] == "egress"]

    def test_new_user_walkthrough_curl(self):
        """README: allow only 127.0.0.2 for curl; curl to 127.0.0.3 gets EPERM; trace shows the deny."""
        good, bad = self.server("127.0.0.2"), self.server("127.0.0.3")
        agent = self.start_agent()
        path = self.write("curl-only.yaml", self.policy("curl-only-two", "    - to: [{cidr: 127.0.0.2/32}]",
                                                        selector='binaries: ["/usr/bin/curl"]'))
        r = agent.vigil("policy", "apply", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("curl-only-two", r.stdout)
        trace = Process([VIGIL, "--socket", agent.socket, "trace", "--kind", "egress"], stdout=subprocess.PIPE)
        self.cleanups.append(trace.stop)
        self.assertTrue(wait_until(lambda: agent.status()["counters"]["trace_clients"] == 1, 10))
        ok = subprocess.run(["/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             f"http://127.0.0.2:{good}/"], capture_output=True, text=True, timeout=10)
        self.assertEqual(ok.stdout, "200", ok.stderr)
        denied = subprocess.run(["/usr/bin/curl", "-v", f"http://127.0.0.3:{bad}/"], capture_output=True, text=True,
                                timeout=10)
        self.assertEqual(denied.returncode, 7)
        self.assertIn("Operation not permitted", denied.stderr)
        line = read_line_matching(trace.proc.stdout, lambda l: "deny" in l and "127.0.0.3" in l, 5)
        self.assertIsNotNone(line, "vigil trace showed no deny")
        self.assertIn("curl-only-two", line)
        self.assertIn("/usr/bin/curl", line)
        # The file sink writes on its own thread: the trace can show the deny first.
        deny = wait_until(lambda: [e for e in self.egress_events() if e["verdict"] == "deny"], 10)
        self.assertTrue(deny, "the deny in the events file")
        self.assertEqual(deny[0]["policy"], "curl-only-two")
        self.assertEqual(deny[0]["dst"], {"addr": "127.0.0.3", "port": bad})
        self.assertEqual(deny[0]["process"]["comm"], "curl")
        listed = json.loads(agent.vigil("policy", "list", "-o", "json").stdout)
        self.assertEqual([p["name"] for p in listed["policies"]], ["curl-only-two"])
        self.assertEqual(listed["enforcement"]["state"], "enforcing")

    def test_enforcement_survives_sigkill_and_restart(self):
        target = self.server("127.0.0.3")
        agent = self.start_agent()
        self.write("deny.yaml", self.policy("deny-three", "    - to: [{cidr: 127.0.0.2/32}]"), self.poldir)
        self.assertTrue(wait_until(lambda: agent.status()["egress"]["state"] == "enforcing", 10))
        loop = Process([PY, "-c", LOOP, "127.0.0.3", str(target)], preexec_fn=in_cgroup(self.cg),
                       stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        agent.stop(signal.SIGKILL)
        time.sleep(1.0)  # no agent at all
        agent.restart()  # same config, same pins
        self.assertTrue(agent.status()["egress"]["adopted"])
        time.sleep(0.5)
        loop.stop()
        ok, tried = map(int, loop.output().split())
        self.assertGreater(tried, 100)
        self.assertEqual(ok, 0, f"{ok} of {tried} connects got through")

    def test_fqdn_learnt_from_dns_answers_with_ttl(self):
        two, three = self.server("127.0.0.2"), self.server("127.0.0.3")
        dns = Process(["/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-daemon",
                       "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.dns_port}",
                       "--address=/api.test/127.0.0.2", "--address=/other.test/127.0.0.3", "--local-ttl=2",
                       "--pid-file=", "--user=root"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.cleanups.append(dns.stop)
        agent = self.start_agent()
        self.write("fqdn.yaml", self.policy("api-by-name", f"""    - to: [{{cidr: 127.0.0.1/32}}]
      ports: [{{port: {self.dns_port}, protocol: udp}}]
    - to: [{{fqdn: api.test}}]
      ports: [{{port: {two}}}]
    - to: [{{fqdn: "*.other.test"}}]"""), self.poldir)
        self.assertTrue(wait_until(lambda: agent.status()["egress"]["policies"] == 1, 10))
        # Before any lookup the address is unknown: denied.
        self.assertEqual(self.run_client(f"connect=127.0.0.2:{two}"), ["EPERM"])
        out = self.run_client(f"resolve=api.test:{self.dns_port}", f"connect=127.0.0.2:{two}",
                              f"resolve=other.test:{self.dns_port}", f"connect=127.0.0.3:{three}",
                              "sleep=3.5", f"connect=127.0.0.2:{two}")
        self.assertEqual(out, ["127.0.0.2", "ok", "127.0.0.3", "EPERM", "slept", "EPERM"])
        allow = [e for e in self.egress_events() if e["verdict"] == "allow" and e["dst"]["port"] == two]
        self.assertEqual(allow[0]["dst"].get("fqdn"), "api.test")
        self.assertEqual(allow[0]["rule"], "egress[1]")

    def test_bad_policies_are_rejected_and_the_last_good_keeps_enforcing(self):
        target = self.server("127.0.0.3")
        agent = self.start_agent()
        good = self.write("good.yaml", self.policy("keep-me", "    - to: [{cidr: 127.0.0.2/32}]"))
        self.assertEqual(agent.vigil("policy", "apply", good).returncode, 0)
        cases = {
            "wrong type": (self.policy("bad", "    - to: [{cidr: 127.0.0.2/32}]").replace(
                "allowLoopback: false", "allowLoopback: maybe"), "allowLoopback"),
            "unknown key": (self.policy("bad", "    - to: [{cidr: 127.0.0.2/32}]\n      portz: []"), "portz"),
            "bad cidr": (self.policy("bad", "    - to: [{cidr: 127.0.0.300/32}]"), "127.0.0.300"),
            "empty selector": (self.policy("bad", "    - to: [{cidr: 127.0.0.2/32}]", selector=" "), "selector"),
            "port out of range": (self.policy("bad", "    - to: [{cidr: 127.0.0.2/32}]\n      ports: [{port: 70000}]"),
                                  "70000"),
        }
        for what, (text, needle) in cases.items():
            with self.subTest(what):
                path = self.write("bad.yaml", text)
                r = agent.vigil("policy", "apply", path)
                self.assertEqual(r.returncode, 1, r.stdout)
                self.assertIn(needle, r.stderr)
                self.assertRegex(r.stderr, r"bad\.yaml:\d+:\d+: ")
        # A broken file dropped straight into policies.dir: rejected, reported.
        self.write("broken.yaml", "apiVersion: vigil/v1\nkind: EgressPolicy\nspec: [", self.poldir)
        self.assertTrue(wait_until(lambda: any(e["kind"] == "policy" and e["policy"]["action"] == "rejected"
                                               for e in agent.events()), 10))
        out = self.run_client(f"connect=127.0.0.3:{target}")
        self.assertEqual(out, ["EPERM"])
        listed = json.loads(agent.vigil("policy", "list", "-o", "json").stdout)
        self.assertEqual([p["name"] for p in listed["policies"]], ["keep-me"])

    def test_directory_changes_and_sighup_reload(self):
        target = self.server("127.0.0.3")
        agent = self.start_agent()
        path = self.write("p.yaml", self.policy("dir-policy", "    - to: [{cidr: 127.0.0.2/32}]"), self.poldir)
        self.assertTrue(wait_until(lambda: agent.status()["egress"]["policies"] == 1, 10))
        self.assertEqual(self.run_client(f"connect=127.0.0.3:{target}"), ["EPERM"])
        # Edit in place without the watch noticing a rename, then SIGHUP.
        with open(path, "w") as f:
            f.write(self.policy("dir-policy", "    - to: [{cidr: 127.0.0.3/32}]"))
        agent.proc.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.run_client(f"connect=127.0.0.3:{target}") == ["ok"], 10))
        os.unlink(path)
        self.assertTrue(wait_until(lambda: agent.status()["egress"]["policies"] == 0, 10))
        # The status is current at once; the events reach the file sink a moment later (its thread batches).
        kinds = lambda: [(e["policy"]["name"], e["policy"]["action"]) for e in agent.events() if e["kind"] == "policy"]
        self.assertTrue(wait_until(lambda: ("dir-policy", "removed") in kinds(), 10), kinds())
        self.assertIn(("dir-policy", "loaded"), kinds())


def read_line_matching(stream, pred, timeout):
    """The first line from a pipe that satisfies pred (raw reads: no hidden buffering)."""
    fd, buf = stream.fileno(), b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if pred(line.decode(errors="replace")):
                return line.decode(errors="replace")
    return None


if __name__ == "__main__":
    unittest.main()
