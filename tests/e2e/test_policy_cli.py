"""E2E (issue 4, first part): `vigil policy validate|test` on real files."""
import json
import os
import subprocess
import tempfile
import unittest

from vigil_e2e import VIGIL

GOOD = """apiVersion: vigil/v1
kind: EgressPolicy
metadata:
  name: curl-only-127-0-0-2
spec:
  mode: enforce
  allowLoopback: false
  selector:
    binaries: [/usr/bin/curl]
  egress:
    - to: [{cidr: 127.0.0.2/32}]
      ports: [{port: 8000, endPort: 8100, protocol: tcp}]
"""


class PolicyCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-policy-")

    def tearDown(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def vigil(self, *args):
        return subprocess.run([VIGIL, *args], capture_output=True, text=True, timeout=20)

    def test_validate_good_and_bad(self):
        good = self.write("good.yaml", GOOD)
        r = self.vigil("policy", "validate", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok (1 policy: curl-only-127-0-0-2)", r.stdout)
        bad = self.write("bad.yaml", GOOD.replace("127.0.0.2/32", "127.0.0.2/40").replace("port: 8000", "port: 0"))
        r = self.vigil("policy", "validate", good, bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"{bad}:11:19: 'spec.egress[0].to[0].cidr': '127.0.0.2/40': an IPv4 prefix is at most /32", r.stderr)
        self.assertIn(f"{bad}:12:22: 'spec.egress[0].ports[0].port' must be an integer from 1 to 65535, got '0'", r.stderr)
        r = self.vigil("policy", "validate", "-o", "json", bad)
        self.assertEqual(json.loads(r.stdout)[0]["ok"], False)

    def test_generate_from_observed_events(self):
        events = [
            {"kind": "connection", "state": "open", "process": {"exe": "/usr/bin/curl", "cgroup": "/a"},
             "conn": {"proto": "tcp", "role": "client", "remote": {"addr": "93.184.216.34", "port": 443}}},
            {"kind": "api_call", "role": "client", "process": {"exe": "/usr/bin/curl", "cgroup": "/a"},
             "conn": {"remote": {"addr": "93.184.216.34", "port": 443}}, "request": {"host": "Example.COM:443"}},
            {"kind": "connection", "state": "open", "process": {"exe": "/usr/bin/curl", "cgroup": "/a"},
             "conn": {"proto": "udp", "role": "client", "remote": {"addr": "10.0.0.53", "port": 53}}},
            {"kind": "connection", "state": "open", "process": {"exe": "/opt/app", "cgroup": "/b"},
             "conn": {"proto": "tcp", "role": "server", "remote": {"addr": "10.9.9.9", "port": 5000}}},
            {"kind": "connection", "state": "open", "process": {"exe": "/opt/app", "cgroup": "/b"},
             "conn": {"proto": "tcp", "role": "client", "remote": {"addr": "127.0.0.1", "port": 80}}},
        ]
        src = self.write("events.jsonl", "\n".join(json.dumps(e) for e in events) + "\nnot json\n")
        r = self.vigil("policy", "generate", "--from", src)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not a JSON event", r.stderr)
        out = self.write("generated.yaml", r.stdout)
        v = self.vigil("policy", "validate", out)
        self.assertEqual(v.returncode, 0, v.stderr)
        self.assertIn("curl-egress", v.stdout)
        self.assertNotIn("app-egress", v.stdout)  # only a server side and loopback: nothing to allow
        base = ["policy", "test", "--file", out, "--exe", "/usr/bin/curl"]
        self.assertEqual(self.vigil(*base, "--dst", "93.184.216.34:443", "--fqdn", "example.com").returncode, 0)
        self.assertEqual(self.vigil(*base, "--dst", "10.0.0.53:53", "--proto", "udp").returncode, 0)
        self.assertEqual(self.vigil(*base, "--dst", "10.0.0.54:53", "--proto", "udp").returncode, 1)
        r = self.vigil("policy", "generate", "--from", src, "--select", "cgroup", "--mode", "enforce")
        self.assertIn('cgroups: ["/a"]', r.stdout)
        self.assertIn("mode: enforce", r.stdout)

    def test_test_answers_allow_deny_unrestricted(self):
        good = self.write("good.yaml", GOOD)
        base = ["policy", "test", "--file", good, "--exe", "/usr/bin/curl"]
        r = self.vigil(*base, "--dst", "127.0.0.2:8080")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("allow: tcp 127.0.0.2:8080 policy curl-only-127-0-0-2 rule egress[0]", r.stdout)
        r = self.vigil(*base, "--dst", "127.0.0.3:8080")
        self.assertEqual(r.returncode, 1)
        self.assertIn("deny: tcp 127.0.0.3:8080 policy curl-only-127-0-0-2", r.stdout)
        r = self.vigil(*base, "--dst", "127.0.0.2:8080", "--proto", "udp", "-o", "json")
        self.assertEqual(json.loads(r.stdout)["verdict"], "deny")
        r = self.vigil(*base, "--dst", "[::ffff:127.0.0.2]:8001")
        self.assertEqual(r.returncode, 0, "IPv4-mapped judged as IPv4")
        r = self.vigil("policy", "test", "--file", good, "--exe", "/usr/bin/wget", "--dst", "127.0.0.3:80")
        self.assertEqual(r.returncode, 0)
        self.assertIn("unrestricted", r.stdout)
        r = self.vigil(*base, "--dst", "not-an-address")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
