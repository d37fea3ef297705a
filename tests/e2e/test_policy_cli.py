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
