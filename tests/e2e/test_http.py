"""E2E (issue 3): plaintext HTTP/1.x calls between real clients (curl, python3)
and a real nginx appear as api_call events, exactly once per side."""
import subprocess
import textwrap
import unittest

import json
import os

from vigil_e2e import CURL, PY, AgentAndNginx, AgentCase, Process, require_root, wait_until


class HttpHelpers:
    """Waiting for, sorting and checking the api_calls of curl against the class's nginx."""

    def setUp(self):
        require_root(self)
        self.base = f"http://127.0.0.1:{self.nginx.port}"

    def wait_calls(self, path_prefix, n):
        found = wait_until(lambda: len(self.calls(path_prefix)) >= n and self.calls(path_prefix), 15)
        return self.calls(path_prefix) if found else self.calls(path_prefix)

    def by_side(self, calls, client_pid):
        client = [c for c in calls if c["role"] == "client"]
        server = [c for c in calls if c["role"] == "server"]
        for c in client:
            self.assertEqual(c["process"]["pid"], client_pid)
        for c in server:
            self.assertEqual(c["process"]["pid"], self.nginx.pid)
            self.assertEqual(c["process"]["comm"], "nginx")
            self.assertEqual(c["process"]["exe"], "/usr/sbin/nginx")
            self.assertEqual(c["conn"]["local"]["port"], self.nginx.port)
        return client, server

    def assert_call(self, c, method, path, status):
        self.assertEqual(c["protocol"], "http/1.1")
        self.assertEqual(c["request"]["method"], method)
        self.assertEqual(c["request"]["path"], path)
        self.assertEqual(c["request"]["host"], f"127.0.0.1:{self.nginx.port}")
        self.assertEqual(c["response"]["status"], status)
        self.assertGreater(c["latency_ns"], 0)
        self.assertFalse(c["tls"])

    def curl(self, *args):
        p = subprocess.Popen([CURL, "-s", "-o", "/dev/null", *args])
        self.assertEqual(p.wait(20), 0)
        return p.pid



class HttpCapture(HttpHelpers, AgentAndNginx):
    def test_curl_get_static_file(self):
        pid = self.curl(f"{self.base}/index.html?token=secret&v=1", "-H", "Authorization: Bearer abc")
        calls = self.wait_calls("/index.html", 2)
        client, server = self.by_side(calls, pid)
        self.assertEqual((len(client), len(server)), (1, 1), calls)
        for c in client + server:
            self.assert_call(c, "GET", "/index.html", 200)
            self.assertEqual(c["request"]["query"], "token=[redacted]&v=1")
            self.assertEqual(c["request"]["headers"]["authorization"], "[redacted]")
            self.assertEqual(c["process"]["comm"], "curl" if c["role"] == "client" else "nginx")
        self.assertEqual(client[0]["conn"]["id"] != server[0]["conn"]["id"], True)
        self.assertEqual(client[0]["conn"]["remote"]["port"], server[0]["conn"]["local"]["port"])
        # The body went out with sendfile(2): counted, flagged, never invented.
        self.assertEqual(server[0]["resp_bytes"], client[0]["resp_bytes"])

    def test_curl_post_with_body(self):
        body = "x" * 3000
        pid = self.curl("-X", "POST", "--data-binary", body, f"{self.base}/api/items")
        client, server = self.by_side(self.wait_calls("/api/items", 2), pid)
        self.assertEqual((len(client), len(server)), (1, 1))
        for c in client + server:
            self.assert_call(c, "POST", "/api/items", 200)
            self.assertGreater(c["req_bytes"], 3000)
            self.assertEqual(c["endpoint"], "/api/items")

    def test_curl_chunked_response(self):
        pid = self.curl("--compressed", f"{self.base}/chunked.txt")
        client, server = self.by_side(self.wait_calls("/chunked.txt", 2), pid)
        self.assertEqual((len(client), len(server)), (1, 1))
        for c in client + server:
            self.assert_call(c, "GET", "/chunked.txt", 200)
            self.assertEqual(c["response"]["headers"].get("transfer-encoding"), "chunked")
            self.assertEqual(c["response"]["headers"].get("content-encoding"), "gzip")
        self.assertEqual(client[0]["resp_bytes"], server[0]["resp_bytes"])

    def run_python(self, code):
        p = subprocess.Popen([PY, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
        out, _ = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, out)
        return p.pid, out

    def test_three_pipelined_requests_in_one_write(self):
        pid, out = self.run_python(f"""
            import socket
            s = socket.create_connection(("127.0.0.1", {self.nginx.port}))
            reqs = b"".join(b"GET /api/pipe/%d HTTP/1.1\\r\\nHost: 127.0.0.1:{self.nginx.port}\\r\\n\\r\\n" % i
                            for i in range(3))
            s.sendall(reqs)
            data = b""
            while data.count(b"HTTP/1.1 200") < 3 or not data.endswith(b"}}\\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            print(data.count(b"HTTP/1.1 200"))
        """)
        self.assertEqual(out.strip(), "3")
        client, server = self.by_side(self.wait_calls("/api/pipe/", 6), pid)
        self.assertEqual(sorted(c["request"]["path"] for c in client), [f"/api/pipe/{i}" for i in range(3)])
        self.assertEqual(sorted(c["request"]["path"] for c in server), [f"/api/pipe/{i}" for i in range(3)])
        for c in client + server:
            self.assertEqual(c["response"]["status"], 200)
            self.assertGreater(c["latency_ns"], 0)
        self.assertEqual(client[0]["process"]["comm"], "python3")

    def test_two_hundred_keepalive_requests_on_one_connection(self):
        pid, out = self.run_python(f"""
            import http.client
            c = http.client.HTTPConnection("127.0.0.1", {self.nginx.port})
            for i in range(200):
                c.request("GET", "/api/ka/%d" % i)
                r = c.getresponse()
                r.read()
                assert r.status == 200
            c.close()
            print("done")
        """)
        calls = self.wait_calls("/api/ka/", 400)
        client, server = self.by_side(calls, pid)
        want = sorted(f"/api/ka/{i}" for i in range(200))
        self.assertEqual(sorted(c["request"]["path"] for c in client), want)
        self.assertEqual(sorted(c["request"]["path"] for c in server), want)
        self.assertEqual(len({c["conn"]["id"] for c in client}), 1, "one connection")
        self.assertEqual(len({c["conn"]["id"] for c in server}), 1)
        for c in client + server:
            self.assert_call(c, "GET", c["request"]["path"], 200)
            self.assertEqual(c["endpoint"], "/api/ka/{kaId}")  # templated by the inventory

    def test_trace_shows_one_readable_line_per_call(self):
        from vigil_e2e import Process, VIGIL
        trace = Process([VIGIL, "--socket", self.agent.socket, "trace", "--kind", "api_call"],
                        stdout=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(lambda: self.agent.status()["counters"]["trace_clients"] >= 1, 10))
            self.curl(f"{self.base}/api/trace/9")
            self.wait_calls("/api/trace/9", 2)
            import time
            time.sleep(0.5)
        finally:
            trace.stop()
        status = self.agent.vigil("status")
        self.assertRegex(status.stdout, r"http: \d+ api_calls")
        lines = [l for l in trace.output().splitlines() if "/api/trace/9" in l]
        self.assertEqual(len(lines), 2, lines)
        for l in lines:
            self.assertIn(f"GET 127.0.0.1:{self.nginx.port}/api/trace/9 -> 200", l)
            self.assertIn(" ms,", l)

    def test_top_once_shows_rates_errors_and_latency_per_process_and_endpoint(self):
        import json
        import time
        from vigil_e2e import Process, VIGIL
        top = Process([VIGIL, "--socket", self.agent.socket, "top", "--once", "-d", "4", "-o", "json"],
                      stdout=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_until(lambda: self.agent.status()["counters"]["trace_clients"] >= 1, 10))
            pid, out = self.run_python(f"""
                import http.client
                c = http.client.HTTPConnection("127.0.0.1", {self.nginx.port})
                for path in ["/api/top/%d" % i for i in range(30)] + ["/nothere/%d" % i for i in range(5)] + \\
                            ["/err/%d" % i for i in range(5)]:
                    c.request("GET", path)
                    c.getresponse().read()
                print("done")
            """)
            self.assertTrue(wait_until(lambda: top.proc.poll() is not None, 15), "top --once exits after one interval")
        finally:
            top.stop()
        snap = json.loads(top.output().strip().splitlines()[-1])
        procs = {p["pid"]: p for p in snap["processes"]}
        server = procs.get(self.nginx.pid)
        self.assertIsNotNone(server, snap)
        self.assertEqual(server["requests"], 40)
        self.assertEqual(server["client_errors"], 5)
        self.assertEqual(server["server_errors"], 5)
        self.assertGreater(server["p95_ns"], 0)
        self.assertGreaterEqual(server["p95_ns"], server["p50_ns"])
        self.assertEqual(server["comm"], "nginx")
        client = procs.get(pid)
        self.assertIsNotNone(client, snap)
        self.assertEqual(client["requests"], 40)
        ep = {(e["role"], e["endpoint"]): e for e in snap["endpoints"]}
        api = ep.get(("server", "/api/top/{topId}"))
        self.assertIsNotNone(api, list(ep))
        self.assertEqual(api["requests"], 30)
        self.assertEqual(api["host"], f"127.0.0.1:{self.nginx.port}")
        # The plain table is what a person sees (the same numbers, no screen control without a tty).
        r = subprocess.run([VIGIL, "--socket", self.agent.socket, "top", "--once", "-d", "0.5"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^\d+ API calls in [\d.]+ s")
        self.assertIn("REQ/S", r.stdout)
        self.assertNotIn("\x1b[", r.stdout)


REPLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools", "http1_replay.py")


class HttpAsServersSpeakIt(AgentCase):
    """Issue 14: messages as real servers and clients write them, replayed over
    loopback TCP between two processes (tools/http1_replay.py): every case is one
    api_call per side with the right method, path, query and final status."""

    # case: (method, path, query, host, status, interim responses)
    EXPECTED = {
        "report": ("REPORT", "/dav/report", "", "h", 207, 0),
        "search": ("SEARCH", "/dav/search", "", "h", 200, 0),
        "purge": ("PURGE", "/cache/purge", "", "h", 200, 0),
        "link": ("LINK", "/dav/link", "", "h", 204, 0),
        "source": ("SOURCE", "/stream/source", "", "h", 200, 0),
        "query": ("QUERY", "/api/query", "", "h", 200, 0),
        "msearch": ("M-SEARCH", "*", "", "h", 200, 0),
        "leading_crlf": ("GET", "/lead/crlf", "", "h", 200, 0),
        "close_http10": ("GET", "/close/http10", "", "", 200, 0),
        "close_header": ("GET", "/close/header", "", "h", 200, 0),
        "no_reason": ("GET", "/status/noreason", "", "h", 301, 0),
        "empty_reason": ("GET", "/status/emptyreason", "", "h", 200, 0),
        "not_modified": ("GET", "/cache/304", "", "h", 304, 0),
        "head": ("HEAD", "/head/len", "", "h", 200, 0),
        "continue": ("POST", "/upload/continue", "", "h", 201, 1),
        "pipelined": ("GET", "/pipe/1", "", "h", 200, 0),
        "pipelined2": ("GET", "/pipe/2", "", "h", 200, 0),
        "fragment": ("GET", "/frag/posts", "page=1", "h", 200, 0),
        "absolute": ("GET", "/", "x=1", "host:1234", 200, 0),
    }

    def test_replayed_messages_over_real_sockets(self):
        server = Process([PY, REPLAY, "server"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(server.proc.stdout.close)
        self.addCleanup(server.stop)
        port = int(server.proc.stdout.readline())
        client = subprocess.run([PY, REPLAY, "client", str(port)], capture_output=True, text=True, timeout=60)
        self.assertEqual(client.returncode, 0, client.stderr)
        paths = {v[1] for v in self.EXPECTED.values()}

        def replayed():
            return [e for e in self.agent.events() if e["kind"] == "api_call"
                    and (e["conn"]["local"]["port"] == port or e["conn"]["remote"]["port"] == port)]
        want = 2 * len(self.EXPECTED)
        wait_until(lambda: len(replayed()) >= want, 15)
        calls = replayed()
        got = {(c["role"], c["request"]["method"], c["request"]["path"]): c for c in calls}
        missing, wrong = [], []
        for name, (method, path, query, host, status, interim) in self.EXPECTED.items():
            for role, pid in (("client", None), ("server", server.pid)):
                c = got.get((role, method, path))
                if c is None:
                    missing.append(f"{role} {name}")
                    continue
                fields = (c["request"].get("query", ""), c["request"].get("host", ""), c["response"]["status"],
                          c["response"].get("interim", 0))
                if fields != (query, host, status, interim) or (pid and c["process"]["pid"] != pid):
                    wrong.append(f"{role} {name}: {fields} != {(query, host, status, interim)}")
        right = want - len(missing) - len(wrong)
        print(f"replayed HTTP/1 exchanges right: {right} of {want}")
        self.assertEqual((missing, wrong), ([], []), json.dumps(sorted(got.keys())))
        self.assertEqual(len(calls), want, json.dumps(sorted(got.keys())))



def capture_agent(*rules):
    """A started vigild with bodies kept, no full samples, and these capture.rules (YAML flow maps)."""
    from vigil_e2e import Agent
    lines = "".join(f"    - {r}\n" for r in rules)
    return Agent(extra_config=f"capture:\n  bodies: true\n  full_first: 0\n  full_sample_every: 0\n  rules:\n{lines}").start()


class CaptureLevels(HttpHelpers, AgentAndNginx):
    """capture.level and capture.rules (issue 28, item 2): per endpoint, on one keep-alive
    connection, each call is shipped once with what its level looked at."""

    @classmethod
    def setUpClass(cls):
        cls.agent = None
        if os.geteuid() != 0:
            return
        from vigil_e2e import Nginx
        cls.agent = capture_agent('{level: metadata, endpoints: ["/api/meta/*"]}',
                                  '{level: full, endpoints: ["POST /api/full/*"]}')
        cls.nginx = Nginx()

    def test_levels_switch_per_call_on_one_connection(self):
        urls = []
        for path in ("/api/meta/1", "/api/hdr/1", "/api/full/1", "/api/meta/2", "/api/full/2"):
            urls += ["-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                     '{"a":"b"}', f"{self.base}{path}"]
            urls.append("--next")
        pid = self.curl(*urls[:-1])
        calls = self.wait_calls("/api/", 10)
        client, server = self.by_side(calls, pid)
        self.assertEqual(sorted(c["request"]["path"] for c in client),
                         ["/api/full/1", "/api/full/2", "/api/hdr/1", "/api/meta/1", "/api/meta/2"], calls)
        self.assertEqual(len(server), 5, calls)
        self.assertEqual(len({c["conn"]["id"] for c in client}), 1, "curl --next keeps the connection")
        for c in client + server:
            path = c["request"]["path"]
            self.assertEqual(c["response"]["status"], 200)
            self.assertGreater(c["req_bytes"], 9)
            if path.startswith("/api/meta/"):
                self.assertNotIn("headers", c["request"], c)
                self.assertNotIn("headers", c["response"], c)
            else:
                self.assertEqual(c["request"]["headers"]["content-type"], "application/json", c)
            self.assertEqual("body" in c["request"], path.startswith("/api/full/"), c)
        capture = self.agent.status()["counters"]["http"]["capture"]
        self.assertEqual(capture["level"], "headers")
        self.assertEqual(capture["calls"], {"metadata": 4, "headers": 2, "full": 4}, capture)


STREAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools", "http1_stream.py")


class NothingLostOrDoubled(AgentCase):
    """Issue 28: one keep-alive connection between two processes (tools/http1_stream.py)
    whose messages are written the awkward ways: a request in 7 writes and its response
    in 40, two requests in one write answered in one write, a 1 MiB response body and a
    1 MiB request body, each followed by a small call. The sequence runs three times on the
    same connection, at capture level headers, full and metadata (rules per endpoint), so the
    level switches mid-stream. Each side reports every call exactly once, with the byte counts
    the client counted on the wire."""

    @classmethod
    def setUpClass(cls):
        cls.agent = None
        if os.geteuid() != 0:
            return
        cls.agent = capture_agent('{level: full, endpoints: ["/nl/full/*", "/nl/full/*/*"]}',
                                  '{level: metadata, endpoints: ["/nl/meta/*", "/nl/meta/*/*"]}')

    def test_awkward_writes_pipelining_and_large_bodies_at_every_level(self):
        server = Process([PY, STREAM, "server"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(server.proc.stdout.close)
        self.addCleanup(server.stop)
        port = int(server.proc.stdout.readline())
        client = subprocess.Popen([PY, STREAM, "client", str(port), "/nl/hdr,/nl/full,/nl/meta"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = client.communicate(timeout=60)
        self.assertEqual(client.returncode, 0, err)
        want = sorted(tuple(x) for x in json.loads(out))
        self.assertEqual(len(want), 21)
        wait_until(lambda: len(self.calls("/nl/")) >= 2 * len(want), 20)
        calls = self.calls("/nl/")
        for role, pid in (("client", client.pid), ("server", server.pid)):
            side = [c for c in calls if c["role"] == role]
            got = sorted((c["request"]["method"], c["request"]["path"], c["response"]["status"], c["req_bytes"],
                          c["resp_bytes"]) for c in side)
            self.assertEqual(got, want, role)
            self.assertEqual({c["process"]["pid"] for c in side}, {pid}, role)
            self.assertEqual(len({c["conn"]["id"] for c in side}), 1, role)
            for c in side:
                path = c["request"]["path"]
                level = path.split("/")[2]
                self.assertEqual("headers" in c["request"], level != "meta", c)
                self.assertEqual("body" in c["response"], level == "full", c)
                if path == "/nl/full/split":  # reassembled from 40 writes
                    self.assertEqual(c["response"]["body"], '{"split":"' + "x" * 150 + '"}', c)
                if path.endswith("/big") or path.endswith("/upload"):
                    self.assertTrue(c["truncated"], c)  # past the capture cap: counted, not copied
                else:
                    self.assertFalse(c["truncated"], c)
        capture = self.agent.status()["counters"]["http"]["capture"]
        self.assertEqual(capture["calls"], {"metadata": 14, "headers": 14, "full": 14}, capture)


if __name__ == "__main__":
    unittest.main()
