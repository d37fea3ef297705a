"""E2E: vigild + vigil with a real HTTP server (python3 http.server) and curl."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from vigil_e2e import (VIGIL, VIGILD, Agent, AgentCase, Process, bpf_prog_ids, free_port, http_server, require_root,
                       wait_until)


def conn_events(events, **match):
    out = []
    for e in events:
        if e.get("kind") != "connection":
            continue
        ok = True
        for key, want in match.items():
            section, _, field = key.partition("__")
            have = e.get(section, {}).get(field) if field else e.get(section)
            if have != want:
                ok = False
        if ok:
            out.append(e)
    return out


class AgentE2E(AgentCase):
    def curl(self, url, *extra):
        p = subprocess.run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{local_port}",
                            *extra, url], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        code, local_port = p.stdout.split()
        return int(code), int(local_port)

    def test_curl_to_local_server_shows_in_file_and_trace(self):
        port = free_port()
        server, root = http_server(port)
        trace_json = Process([VIGIL, "--socket", self.agent.socket, "trace", "--comm", "curl", "-o", "json"],
                             stdout=subprocess.PIPE, text=True)
        trace_human = Process([VIGIL, "--socket", self.agent.socket, "trace", "--kind", "connection"],
                              stdout=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(lambda: self.agent.status()["counters"]["trace_clients"] == 2, 10))
            code, cport = self.curl(f"http://127.0.0.1:{port}/")
            self.assertEqual(code, 200)

            def both_sides():
                ev = self.agent.events()
                client = [e for e in conn_events(ev, process__comm="curl")
                          if e["conn"]["local"]["port"] == cport]
                server_side = [e for e in conn_events(ev, process__pid=server.pid)
                               if e["conn"]["remote"]["port"] == cport]
                return (client, server_side) if len(client) == 2 and len(server_side) == 2 else None

            found = wait_until(both_sides, 10)
            self.assertIsNotNone(found, "connection events missing from the events file")
            client, server_side = found
            for e in client:
                self.assertEqual(e["v"], 1)
                self.assertEqual(e["process"]["exe"], "/usr/bin/curl")
                self.assertEqual(e["process"]["uid"], 0)
                self.assertEqual(e["process"]["ppid"], os.getpid())
                self.assertEqual(e["conn"]["role"], "client")
                self.assertEqual(e["conn"]["proto"], "tcp")
                self.assertEqual(e["conn"]["family"], "ipv4")
                self.assertEqual(e["conn"]["local"], {"addr": "127.0.0.1", "port": cport})
                self.assertEqual(e["conn"]["remote"], {"addr": "127.0.0.1", "port": port})
            self.assertEqual([e["state"] for e in client], ["open", "close"])
            self.assertGreater(client[1]["bytes_sent"], 0)
            self.assertGreater(client[1]["bytes_recv"], client[1]["bytes_sent"])
            for e in server_side:
                self.assertEqual(e["process"]["pid"], server.pid)
                self.assertTrue(e["process"]["exe"].startswith("/usr/bin/python3"), e["process"]["exe"])
                self.assertEqual(e["conn"]["role"], "server")
                self.assertEqual(e["conn"]["local"], {"addr": "127.0.0.1", "port": port})
            self.assertEqual(server_side[1]["bytes_recv"], client[1]["bytes_sent"])
            self.assertEqual(server_side[1]["bytes_sent"], client[1]["bytes_recv"])
            seqs = [e["seq"] for e in self.agent.events()]
            self.assertEqual(seqs, sorted(seqs))
            self.assertEqual(len(seqs), len(set(seqs)))
        finally:
            time.sleep(0.5)  # let the agent push the last events to the trace clients
            trace_json.stop()
            trace_human.stop()
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

        json_lines = [json.loads(l) for l in trace_json.output().splitlines() if l.strip()]
        self.assertTrue(all(e["process"]["comm"] == "curl" for e in json_lines))
        self.assertTrue(any(e["conn"]["local"]["port"] == cport for e in json_lines), json_lines)
        human = trace_human.output()
        self.assertIn(f"127.0.0.1:{cport} -> 127.0.0.1:{port}", human)
        self.assertIn("curl", human)
        self.assertIn("exe=/usr/bin/curl", human)

    def test_glibc_resolver_batch_counted(self):
        """glibc's resolver sends its A and AAAA queries in one sendmmsg: the UDP
        connection's close carries the bytes of both queries and of the answers."""
        dns_addr = "127.0.83.1"
        d = tempfile.mkdtemp(prefix="vigil-dns-")
        self.addCleanup(shutil.rmtree, d, True)
        dns = Process(["/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-daemon",
                       f"--listen-address={dns_addr}", "--bind-interfaces", "--port=53",
                       "--address=/api.test/127.0.0.9", "--pid-file=", "--user=root"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(dns.stop)
        resolv = os.path.join(d, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {dns_addr}\noptions attempts:1 timeout:3\n")
        time.sleep(0.3)
        # Its own mount namespace: /etc/resolv.conf names the test's server for it alone.
        p = subprocess.run(["/usr/bin/unshare", "-m", "/bin/sh", "-c",
                            f"mount --bind {resolv} /etc/resolv.conf && exec /usr/bin/getent ahosts api.test"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("127.0.0.9", p.stdout)
        closes = wait_until(lambda: [e for e in conn_events(self.agent.events(), process__comm="getent", state="close")
                                     if e["conn"]["proto"] == "udp" and e["conn"]["remote"]["port"] == 53], 10)
        self.assertTrue(closes, [e for e in self.agent.events() if e.get("kind") == "connection"][-5:])
        c = closes[0]
        self.assertEqual(c["conn"]["remote"]["addr"], dns_addr)
        # Two queries for api.test (12-byte header, 10-byte name, type and class): 26 bytes each.
        self.assertEqual(c["bytes_sent"], 52, c)
        self.assertGreater(c["bytes_recv"], 26, c)  # two answers (42 + 26 bytes here)

    def test_ipv6_curl(self):
        port = free_port()
        server, root = http_server(port, bind="::1")
        try:
            code, cport = self.curl(f"http://[::1]:{port}/")
            self.assertEqual(code, 200)
            found = wait_until(lambda: [e for e in conn_events(self.agent.events(), process__comm="curl")
                                        if e["conn"]["local"]["port"] == cport], 10)
            self.assertTrue(found)
            self.assertEqual(found[0]["conn"]["family"], "ipv6")
            self.assertEqual(found[0]["conn"]["remote"], {"addr": "::1", "port": port})
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    def test_trace_pid_filter(self):
        port = free_port()
        server, root = http_server(port)
        trace = Process([VIGIL, "--socket", self.agent.socket, "trace", "--pid", str(server.pid), "-o", "json"],
                        stdout=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(lambda: self.agent.status()["counters"]["trace_clients"] >= 1, 10))
            self.curl(f"http://127.0.0.1:{port}/")
            self.assertTrue(wait_until(lambda: conn_events(self.agent.events(), process__pid=server.pid), 10))
            time.sleep(0.5)
        finally:
            trace.stop()
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
        lines = [json.loads(l) for l in trace.output().splitlines() if l.strip()]
        self.assertTrue(lines)
        self.assertTrue(all(e["process"]["pid"] == server.pid for e in lines))

    def test_status(self):
        r = self.agent.vigil("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tp__syscalls__sys_exit_connect", r.stdout)
        self.assertIn("lost:", r.stdout)
        s = self.agent.status()
        self.assertEqual(s["agent"], "vigild")
        names = {p["name"] for p in s["programs"]}
        # process + connection lifecycle (8) and payload capture (11 syscalls, at their exit only)
        self.assertEqual(len(names), 19, names)
        self.assertFalse({n for n in names if n.startswith("tp__syscalls__sys_enter_")} -
                         {"tp__syscalls__sys_enter_connect", "tp__syscalls__sys_enter_close"}, names)
        self.assertIn("tp__syscalls__sys_exit_sendmmsg", names)
        self.assertIn("tp__syscalls__sys_exit_connect", names)
        self.assertIn("tp__syscalls__sys_exit_recvfrom", names)
        self.assertTrue(all(p["attached"] for p in s["programs"]))
        self.assertGreater(s["counters"]["processes"], 0)
        self.assertEqual(oct(os.stat(self.agent.socket).st_mode & 0o777), "0o600")

    def test_cli_errors(self):
        r = subprocess.run([VIGIL, "--socket", "/nonexistent/vigil.sock", "status"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot connect to vigild at /nonexistent/vigil.sock", r.stderr)
        r = subprocess.run([VIGIL, "trace", "--kind", "nonsense"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_global_flags_after_the_verb(self):
        for argv in (["status", "--socket", self.agent.socket, "-o", "json"],
                     ["-o", "json", "status", "--socket", self.agent.socket],
                     ["policy", "list", "--socket", self.agent.socket, "-o", "json"]):
            r = subprocess.run([VIGIL, *argv], capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, f"{argv}: {r.stderr}")
            self.assertIsInstance(json.loads(r.stdout), dict, argv)


class CliAgainstAStrangeAgent(unittest.TestCase):
    """vigil facing a control socket that answers in an unexpected shape: a clear error, exit 2."""

    def serve_once(self, reply):
        d = tempfile.mkdtemp(prefix="vigil-cli-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "s.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        self.addCleanup(srv.close)

        def answer():
            c, _ = srv.accept()
            c.recv(65536)
            c.sendall(reply.encode() + b"\n")
            c.close()
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        self.addCleanup(t.join, 5)
        return path

    def test_malformed_status_reply(self):
        path = self.serve_once(json.dumps({"counters": {"lost": {}}, "programs": [],
                                           "tls": [{"lib": "openssl-3", "probes": "not a list"}]}))
        r = subprocess.run([VIGIL, "status", "--socket", path], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("vigil: unexpected reply from vigild", r.stderr)
        self.assertNotIn("terminate", r.stderr)

    def test_reply_that_is_not_json(self):
        path = self.serve_once("<html>")
        r = subprocess.run([VIGIL, "policy", "list", "--socket", path], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no reply from vigild", r.stderr)


class Lifecycle(unittest.TestCase):
    def setUp(self):
        require_root(self)

    def _stop_leaves_nothing_attached(self, sig):
        before = bpf_prog_ids()
        agent = Agent()
        try:
            agent.start()
            ours = {p["id"] for p in agent.status()["programs"]}
            self.assertEqual(len(ours), 19)
            self.assertTrue(ours <= bpf_prog_ids())
            self.assertFalse(ours & before)
            agent.stop(sig)
            # Program release after the last fd closes is deferred in the kernel.
            self.assertTrue(wait_until(lambda: not (ours & bpf_prog_ids()), 10),
                            f"programs still loaded after {sig.name}: {ours & bpf_prog_ids()}")
        finally:
            agent.cleanup()

    def test_sigterm_detaches_everything(self):
        self._stop_leaves_nothing_attached(signal.SIGTERM)

    def test_sigkill_detaches_everything(self):
        self._stop_leaves_nothing_attached(signal.SIGKILL)

    def test_restart_after_sigkill(self):
        agent = Agent()
        try:
            agent.start()
            agent.stop(signal.SIGKILL)
            self.assertTrue(os.path.exists(agent.socket))  # stale socket left behind
            agent.stdout = open(os.path.join(agent.dir, "stdout2.jsonl"), "w")
            agent.stderr = open(agent.stderr_path, "a")
            agent.start()
            self.assertEqual(agent.status()["agent"], "vigild")
            self.assertEqual(agent.stop(), 0)
        finally:
            agent.cleanup()


class Config(unittest.TestCase):
    def _run(self, text):
        d = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"vigil-cfg-{os.getpid()}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write(text)
        try:
            return path, subprocess.run([VIGILD, "--config", path], capture_output=True, text=True, timeout=20)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_typo_key_exits_nonzero_naming_key_and_line(self):
        path, r = self._run("node_name: a\ncapture:\n  http: true\n  max_captur_bytes: 10\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{path}:4:3: unknown key 'capture.max_captur_bytes'", r.stderr)
        self.assertIn("did you mean 'max_capture_bytes'", r.stderr)

    def test_wrong_type_exits_nonzero(self):
        path, r = self._run("capture:\n  bodies: sometimes\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{path}:2:11: 'capture.bodies' must be true or false", r.stderr)

    def test_a_sink_with_a_missing_ca_file_is_refused_at_start_naming_it(self):
        if os.geteuid() != 0:
            self.skipTest("start needs root")
        d = os.path.join("/tmp", f"vigil-sink-{os.getpid()}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(f"control_socket: {d}/s.sock\ndata_dir: {d}/data\nevents:\n  sinks:\n    - type: webhook\n"
                    f"      url: https://127.0.0.1:1/\n      ca: {d}/missing-ca.pem\n")
        try:
            r = subprocess.run([VIGILD, "--config", path], capture_output=True, text=True, timeout=20)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("sink webhook: webhook https://127.0.0.1:1/: TLS CA file", r.stderr)
        self.assertIn(f"{d}/missing-ca.pem", r.stderr)

    def test_version_and_check(self):
        r = subprocess.run([VIGILD, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^vigild \d+\.\d+\.\d+")
        r = subprocess.run([VIGILD, "--check-config"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
