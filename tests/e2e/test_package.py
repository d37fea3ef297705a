"""E2E (issue 12): the .deb. `cpack -G DEB` (what `make package` runs) builds
vigil_<version>_amd64.deb; lintian finds no error or warning in it; dpkg installs it on
this machine, putting the binaries, unit, configuration, man pages and completion where
the README says; the installed vigild starts from the installed files (with a test
configuration derived from the installed one) and answers `vigil status`; the installed
unit verifies; `dpkg --purge` leaves nothing behind."""
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from vigil_e2e import Process, require_root, wait_until

BUILD_DIR = os.path.realpath(os.path.join(os.environ.get("VIGIL_BIN_DIR", "../../build/bin"), ".."))
INSTALLED = ["/usr/sbin/vigild", "/usr/bin/vigil", "/usr/lib/systemd/system/vigil.service",
             "/etc/vigil/vigil.yaml", "/usr/share/man/man8/vigild.8.gz", "/usr/share/man/man8/vigil.8.gz",
             "/usr/share/bash-completion/completions/vigil", "/usr/share/doc/vigil/copyright",
             "/usr/share/doc/vigil/examples/policies/egress-audit-curl.yaml"]
CREATED = ["/var/lib/vigil", "/var/log/vigil", "/etc/vigil/policies.d"]
ENABLED = "/etc/systemd/system/multi-user.target.wants/vigil.service"


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "vigil"], capture_output=True, text=True)
    return "install ok installed" in r.stdout


class DebianPackage(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if installed():
            self.skipTest("a vigil package is already installed on this machine; the test would replace it")
        self.dir = tempfile.mkdtemp(prefix="vigil-deb-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # A `make run` leaves /var/lib/vigil and /var/log/vigil; purge would remove them:
        # they are moved aside for the test and put back after it.
        for path in ("/etc/vigil", "/var/lib/vigil", "/var/log/vigil"):
            if os.path.lexists(path):
                aside = f"{path}.vigil-test-{os.getpid()}"
                os.rename(path, aside)
                self.addCleanup(self.put_back, path, aside)

    def put_back(self, path, aside):
        if os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
        os.rename(aside, path)

    def tearDown(self):
        if installed():
            subprocess.run(["dpkg", "--purge", "vigil"], capture_output=True)

    def test_build_lint_install_run_purge(self):
        r = subprocess.run(["cpack", "-G", "DEB"], cwd=BUILD_DIR, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        debs = glob.glob(os.path.join(BUILD_DIR, "vigil_*_amd64.deb"))
        self.assertEqual(len(debs), 1, debs)
        deb = debs[0]
        version = re.match(r"vigil_(.+)_amd64\.deb", os.path.basename(deb)).group(1)

        info = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True).stdout
        self.assertIn("android-libboringssl", info)
        self.assertNotIn("-dev", info, "runtime libraries only")
        self.assertNotRegex(info, r"libssl3\b", "no OpenSSL")

        if shutil.which("lintian"):
            lint = subprocess.run(["lintian", deb], capture_output=True, text=True, timeout=600)
            tags = [line for line in lint.stdout.splitlines() if re.match(r"^[EW]: ", line)]
            self.assertEqual(tags, [], lint.stdout)
        else:
            self.fail("lintian is not installed (scripts/install-deps.sh installs it)")

        r = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for path in INSTALLED:
            self.assertTrue(os.path.exists(path), path)
        for path in CREATED:
            self.assertTrue(os.path.isdir(path), path)
        self.assertEqual(stat.S_IMODE(os.stat("/var/lib/vigil").st_mode), 0o700)
        self.assertTrue(os.path.islink(ENABLED), "enabled (not started)")
        out = subprocess.run(["/usr/sbin/vigild", "--version"], capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), f"vigild {version}", out.stderr)
        out = subprocess.run(["/usr/bin/vigil", "--version"], capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), f"vigil {version}", out.stderr)
        ldd = subprocess.run(["ldd", "/usr/sbin/vigild"], capture_output=True, text=True).stdout
        self.assertIn("/usr/lib/x86_64-linux-gnu/android/libssl.so", ldd)
        self.assertNotIn("not found", ldd)
        r = subprocess.run(["/usr/sbin/vigild", "--check-config", "--config", "/etc/vigil/vigil.yaml"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", "/usr/lib/systemd/system/vigil.service"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The installed configuration, pointed at this test's directories.
        with open("/etc/vigil/vigil.yaml") as f:
            conf = f.read()
        sock = os.path.join(self.dir, "vigil.sock")
        conf = (conf.replace("/var/lib/vigil", os.path.join(self.dir, "data"))
                .replace("/run/vigil/vigil.sock", sock)
                .replace("/var/log/vigil/events.jsonl", os.path.join(self.dir, "events.jsonl"))
                .replace("/sys/fs/bpf/vigil", os.path.join(self.dir, "no-pins"))
                .replace("127.0.0.1:9464", '""'))
        cfg = os.path.join(self.dir, "vigil.yaml")
        with open(cfg, "w") as f:
            f.write(conf)
        with open(os.path.join(self.dir, "stderr"), "w") as err:
            agent = Process(["/usr/sbin/vigild", "--config", cfg], stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(agent.stop)

        def status():
            r = subprocess.run(["/usr/bin/vigil", "--socket", sock, "status"], capture_output=True, text=True)
            return r.stdout if r.returncode == 0 else None
        st = wait_until(status, 20)
        with open(os.path.join(self.dir, "stderr")) as f:
            log = f.read()
        self.assertTrue(st, log)
        self.assertIn("vigild", st)
        self.assertEqual(agent.stop(), 0)

        r = subprocess.run(["dpkg", "--purge", "vigil"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(installed())
        left = [p for p in INSTALLED + CREATED + ["/etc/vigil", ENABLED] if os.path.lexists(p)]
        self.assertEqual(left, [], "purge leaves nothing behind")


if __name__ == "__main__":
    unittest.main()
