"""E2E (issue 5): HTTPS calls between real clients (curl, python3 ssl) and a
real nginx with TLS are seen in plaintext at the TLS library boundary and
reported once per side with tls: true and the library that carried them."""
import json
import os
import shutil
import tempfile
import subprocess
import textwrap
import time
import unittest

from vigil_e2e import CURL, PY, VIGIL, Agent, AgentAndNginx, Nginx, Process, require_root, wait_until


class TlsCapture(AgentAndNginx):
    NGINX_TLS = True  # nginx starts after the agent: found by its exec and a scan

    def setUp(self):
        require_root(self)
        self.base = f"https://127.0.0.1:{self.nginx.port}"
        # nginx maps libssl at start; give the agent's scan a moment to attach.
        self.assertTrue(wait_until(lambda: any(l["attached"] and l["processes"] > 0
                                               for l in self.agent.status()["tls"]), 15),
                        self.agent.status()["tls"])

    def wait_calls(self, path_prefix, n):
        wait_until(lambda: len(self.calls(path_prefix)) >= n, 15)
        return self.calls(path_prefix)

    def check_sides(self, calls, client_pid, client_comm, n, method="GET", status=200, client_lib="openssl-3"):
        client = [c for c in calls if c["role"] == "client"]
        server = [c for c in calls if c["role"] == "server"]
        why = json.dumps({"lost": self.agent.status()["counters"]["lost"],
                          "paths": sorted((c["role"], c["request"]["path"]) for c in calls)})
        self.assertEqual(len(client), n, why)
        self.assertEqual(len(server), n, why)
        for c in client:
            self.assertEqual(c["process"]["pid"], client_pid)
            self.assertEqual(c["process"]["comm"], client_comm)
        for c in server:
            self.assertEqual(c["process"]["pid"], self.nginx.pid)
            self.assertEqual(c["conn"]["local"]["port"], self.nginx.port)
        for c in calls:
            self.assertTrue(c["tls"])
            self.assertEqual(c["tls_lib"], client_lib if c["role"] == "client" else "openssl-3")
            self.assertEqual(c["request"]["method"], method)
            self.assertEqual(c["response"]["status"], status)
            self.assertGreater(c["latency_ns"], 0)
            self.assertEqual(c["protocol"], "http/1.1")

    def test_curl_https_get(self):
        p = subprocess.Popen([CURL, "-sk", "--http1.1", "-o", "/dev/null", f"{self.base}/api/tls/curl?x=1"])
        self.assertEqual(p.wait(20), 0)
        calls = self.wait_calls("/api/tls/curl", 2)
        self.check_sides(calls, p.pid, "curl", 1)
        self.assertEqual(calls[0]["request"]["query"], "x=1")

    def test_python_ssl_keepalive(self):
        code = textwrap.dedent(f"""
            import http.client, ssl, sys
            ctx = ssl._create_unverified_context()
            c = http.client.HTTPSConnection("127.0.0.1", {self.nginx.port}, context=ctx)
            for i in range(20):
                c.request("POST" if i % 2 else "GET", f"/api/tls/py/{{i}}", body=b"x" * (i * 10) if i % 2 else None)
                r = c.getresponse(); r.read()
                assert r.status == 200, r.status
            c.close()
        """)
        p = subprocess.Popen([PY, "-c", code])
        self.assertEqual(p.wait(30), 0)
        calls = self.wait_calls("/api/tls/py/", 40)
        client = [c for c in calls if c["role"] == "client"]
        self.assertEqual(sorted(c["request"]["path"] for c in client), sorted(f"/api/tls/py/{i}" for i in range(20)))
        gets = [c for c in calls if c["request"]["method"] == "GET"]
        posts = [c for c in calls if c["request"]["method"] == "POST"]
        self.check_sides(gets, p.pid, "python3", 10)
        self.check_sides(posts, p.pid, "python3", 10, method="POST")

    def test_boringssl_client(self):
        client = os.environ.get("VIGIL_BORINGSSL_CLIENT",
                                os.path.join(os.path.dirname(VIGIL), "vigil_boringssl_client"))
        p = subprocess.Popen([client, str(self.nginx.port), "/api/tls/boring", "3"])
        self.assertEqual(p.wait(20), 0)
        calls = self.wait_calls("/api/tls/boring/", 6)
        self.check_sides(calls, p.pid, "vigil_boringssl", 3, client_lib="boringssl")

    def test_node_https_static_openssl(self):
        # Node.js links OpenSSL into its executable and runs TLS over memory BIOs.
        js = textwrap.dedent(f"""
            const https = require('https');
            const agent = new https.Agent({{keepAlive: true, maxSockets: 1}});
            let i = 0;
            function one() {{
              https.get({{host: '127.0.0.1', port: {self.nginx.port}, path: '/api/tls/node/' + i,
                          rejectUnauthorized: false, agent}}, r => {{
                r.resume();
                r.on('end', () => {{ if (++i < 3) one(); else agent.destroy(); }});
              }});
            }}
            setTimeout(one, 1500);  // the executable's probes attach at its exec scan
        """)
        p = subprocess.Popen(["/usr/bin/node", "-e", js])
        self.assertEqual(p.wait(30), 0)
        calls = self.wait_calls("/api/tls/node/", 6)
        self.check_sides(calls, p.pid, "node", 3)
        libs = {l["path"]: l for l in self.agent.status()["tls"]}
        self.assertIn("SSL_write (return)", libs["/usr/bin/node"]["probes"])

    def test_gnutls_cli(self):
        # GnuTLS's own client: gnutls_record_send2/recv on libgnutls.so.30.
        p = subprocess.Popen(["gnutls-cli", "--insecure", "--port", str(self.nginx.port), "127.0.0.1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        p.stdin.write(b"GET /api/tls/gnutls-cli HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        p.stdin.flush()
        out = p.stdout.read()  # until nginx closes the connection
        p.stdin.close()
        p.stdout.close()
        p.wait(20)
        self.assertIn(b"HTTP/1.1 200", out)
        calls = self.wait_calls("/api/tls/gnutls-cli", 2)
        self.check_sides(calls, p.pid, "gnutls-cli", 1, client_lib="gnutls")

    def test_libcurl_gnutls_keepalive(self):
        # A program on libcurl3-gnutls (Debian's libcurl-gnutls.so.4), three GETs on one handle.
        code = textwrap.dedent(f"""
            import ctypes, sys
            curl = ctypes.CDLL("libcurl-gnutls.so.4")
            curl.curl_easy_init.restype = ctypes.c_void_p
            curl.curl_easy_setopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            curl.curl_easy_perform.argtypes = [ctypes.c_void_p]
            curl.curl_easy_getinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
            sink = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                                    ctypes.c_void_p)(lambda p, s, n, u: s * n)
            h = curl.curl_easy_init()
            curl.curl_easy_setopt(h, 64, 0)  # CURLOPT_SSL_VERIFYPEER
            curl.curl_easy_setopt(h, 81, 0)  # CURLOPT_SSL_VERIFYHOST
            curl.curl_easy_setopt(h, 20011, ctypes.cast(sink, ctypes.c_void_p))  # CURLOPT_WRITEFUNCTION
            for i in range(3):
                url = f"https://127.0.0.1:{self.nginx.port}/api/tls/curl-gnutls/{{i}}".encode()
                curl.curl_easy_setopt(h, 10002, ctypes.c_char_p(url))  # CURLOPT_URL
                assert curl.curl_easy_perform(h) == 0
                code = ctypes.c_long()
                curl.curl_easy_getinfo(h, 0x200002, ctypes.byref(code))  # CURLINFO_RESPONSE_CODE
                assert code.value == 200, code.value
        """)
        p = subprocess.Popen([PY, "-c", code])
        self.assertEqual(p.wait(30), 0)
        calls = self.wait_calls("/api/tls/curl-gnutls/", 6)
        self.check_sides(calls, p.pid, "python3", 3, client_lib="gnutls")
        self.assertEqual(len({c["conn"]["local"]["port"] for c in calls if c["role"] == "client"}), 1)

    def test_library_copy_at_a_new_path_is_discovered(self):
        # A private copy of libssl (another inode) loaded by a new process: found
        # by the scan that follows its exec, before it starts talking.
        d = tempfile.mkdtemp(prefix="vigil-libssl-")
        self.addCleanup(shutil.rmtree, d, True)
        shutil.copy("/usr/lib/x86_64-linux-gnu/libssl.so.3", d)
        code = textwrap.dedent(f"""
            import http.client, ssl, time
            time.sleep(1.5)
            c = http.client.HTTPSConnection("127.0.0.1", {self.nginx.port}, context=ssl._create_unverified_context())
            c.request("GET", "/api/tls/copy"); r = c.getresponse(); r.read(); assert r.status == 200
        """)
        p = subprocess.Popen([PY, "-c", code], env={**os.environ, "LD_LIBRARY_PATH": d})
        self.assertEqual(p.wait(30), 0)
        calls = self.wait_calls("/api/tls/copy", 2)
        self.check_sides(calls, p.pid, "python3", 1)
        libs = {l["path"]: l for l in self.agent.status()["tls"]}
        self.assertIn(os.path.join(d, "libssl.so.3"), libs, libs)

    def test_status_lists_attached_libssl(self):
        r = self.agent.vigil("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tls libraries:", r.stdout)
        self.assertRegex(r.stdout, r"openssl-3\s+\d+\s+\S*libssl\.so\.3\s+SSL_write")


class TlsShortLivedProcesses(AgentAndNginx):
    """Issue 14: a TLS library inside an executable first met in a process that is
    gone before the agent reads its maps (a one-shot `node -e`) is still attached:
    the executable is opened at its exec, and a failed attempt is tried again
    through the next process instead of sticking. A fresh agent: nothing has
    attached /usr/bin/node yet."""
    NGINX_TLS = True

    def node_get(self, js_body):
        p = subprocess.Popen(["/usr/bin/node", "-e", "const https = require('https');\n" + js_body])
        self.assertEqual(p.wait(30), 0)
        return p.pid

    def client_calls(self, prefix, pid):
        return [c for c in self.calls(prefix) if c["role"] == "client" and c["process"]["pid"] == pid]

    def test_one_shot_node_requests_then_a_long_lived_client(self):
        require_root(self)
        libs = {l["path"]: l for l in self.agent.status()["tls"]}
        self.assertNotIn("/usr/bin/node", libs, "another test attached node first: this one needs a fresh agent")
        one_shots = []
        for i in range(3):
            one_shots.append(self.node_get(
                f"https.get({{host: '127.0.0.1', port: {self.nginx.port}, path: '/api/tls/oneshot/{i}', "
                "rejectUnauthorized: false}, r => r.resume());"))
        long_lived = subprocess.Popen(["/usr/bin/node", "-e", textwrap.dedent(f"""
            const https = require('https');
            const agent = new https.Agent({{keepAlive: true, maxSockets: 1}});
            let i = 0;
            function one() {{
              https.get({{host: '127.0.0.1', port: {self.nginx.port}, path: '/api/tls/long/' + i,
                          rejectUnauthorized: false, agent}}, r => {{
                r.resume();
                r.on('end', () => {{ if (++i < 5) setTimeout(one, 300); else agent.destroy(); }});
              }});
            }}
            one();  // at once: the executable is known from the one-shots
        """)])
        self.assertEqual(long_lived.wait(30), 0)
        self.assertTrue(wait_until(lambda: len(self.client_calls("/api/tls/long/", long_lived.pid)) >= 5, 15),
                        json.dumps(self.agent.status()["tls"]))
        long_calls = self.client_calls("/api/tls/long/", long_lived.pid)
        self.assertEqual(sorted(c["request"]["path"] for c in long_calls), [f"/api/tls/long/{i}" for i in range(5)])
        for c in long_calls:
            self.assertTrue(c["tls"])
            self.assertEqual(c["process"]["comm"], "node")
        libs = {l["path"]: l for l in self.agent.status()["tls"]}
        self.assertTrue(libs["/usr/bin/node"]["attached"], libs["/usr/bin/node"])
        self.assertEqual(libs["/usr/bin/node"]["error"], "")
        # The first one-shot may finish before its executable is attached (an ELF of ~100 MB
        # to read); each later one starts with the executable known.
        seen = [len(self.client_calls(f"/api/tls/oneshot/{i}", pid)) for i, pid in enumerate(one_shots)]
        print(f"one-shot node requests captured on the client side: {sum(seen)} of 3 ({seen})")
        self.assertEqual(seen[1:], [1, 1], seen)


class KeepAliveBeforeAgent(unittest.TestCase):
    """A keep-alive connection opened before vigild starts is captured from the
    first request after the start, both sides: plaintext ones are found in /proc
    at the start (seeded in the kernel's table, tracked at their next read or
    write, nginx's side told apart by its listening port); TLS ones also from
    inside the TLS call."""

    def check(self, tls):
        require_root(self)
        nginx = Nginx(tls=tls)
        self.addCleanup(nginx.stop)
        go = os.path.join(tempfile.mkdtemp(prefix="vigil-go-"), "go")
        self.addCleanup(shutil.rmtree, os.path.dirname(go), True)
        conn = (f'http.client.HTTPSConnection("127.0.0.1", {nginx.port}, context=ssl._create_unverified_context())'
                if tls else f'http.client.HTTPConnection("127.0.0.1", {nginx.port})')
        code = textwrap.dedent(f"""
            import http.client, os, ssl, time
            c = {conn}
            c.request("GET", "/api/early/before"); r = c.getresponse(); r.read()
            while not os.path.exists({go!r}): time.sleep(0.05)
            for i in range(3):
                c.request("GET", f"/api/early/{{i}}"); r = c.getresponse(); r.read(); assert r.status == 200
        """)
        client = Process([PY, "-c", code])
        self.addCleanup(client.stop)
        time.sleep(1.0)  # the first request is done before the agent exists
        agent = Agent().start()
        self.addCleanup(agent.cleanup)
        open(go, "w").close()
        self.assertEqual(client.proc.wait(30), 0)
        wait_until(lambda: len([e for e in agent.events() if e["kind"] == "api_call"]) >= 6, 15)
        calls = [e for e in agent.events() if e["kind"] == "api_call"
                 and e["request"]["path"].startswith("/api/early/")]
        client_side = sorted(c["request"]["path"] for c in calls if c["role"] == "client")
        server_side = sorted(c["request"]["path"] for c in calls if c["role"] == "server")
        self.assertEqual(client_side, [f"/api/early/{i}" for i in range(3)], json.dumps(calls)[:2000])
        self.assertEqual(server_side, [f"/api/early/{i}" for i in range(3)], agent.log()[-2000:])
        for c in calls:
            self.assertEqual(c["tls"], tls)
            self.assertEqual(c["response"]["status"], 200)
            pid = client.pid if c["role"] == "client" else nginx.pid
            self.assertEqual(c["process"]["pid"], pid)
        opens = [e for e in agent.events() if e["kind"] == "connection" and e["state"] == "open"
                 and nginx.port in (e["conn"]["local"]["port"], e["conn"]["remote"]["port"])]
        roles = sorted(e["conn"]["role"] for e in opens)
        self.assertEqual(roles, ["client", "server"])

    def test_plaintext_keepalive_connection_opened_before_the_agent(self):
        self.check(tls=False)

    def test_tls_keepalive_connection_opened_before_the_agent(self):
        self.check(tls=True)


GO_PEER = os.environ.get("VIGIL_GO_PEER", os.path.join(os.path.dirname(VIGIL), "..", "go", "tlspeer"))
GO_PEER_STRIPPED = os.environ.get("VIGIL_GO_PEER_STRIPPED", GO_PEER + "-stripped")


class GoTls(AgentAndNginx):
    """Issue 14: Go's crypto/tls (no libssl) seen at crypto/tls.(*Conn).Write and
    Read: a Go HTTPS client against nginx, a Go HTTPS server (HTTP/2) against
    curl, each as built and stripped (-s -w: found through .gopclntab). Each
    program's requests start at once: the executable is attached at its exec."""
    NGINX_TLS = True

    def go_calls(self, prefix, n):
        wait_until(lambda: len(self.calls(prefix)) >= n, 15)
        return self.calls(prefix)

    def go_client(self, binary, path, n):
        p = subprocess.run([binary, "client", f"https://127.0.0.1:{self.nginx.port}{path}", str(n), "h1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split("\n")[:n], ["HTTP/1.1 200"] * n)

    def check_go_client(self, binary, name):
        # A copy at a new path (a new inode): no earlier test attached it.
        d = tempfile.mkdtemp(prefix="vigil-go-")
        self.addCleanup(shutil.rmtree, d, True)
        exe = os.path.join(d, os.path.basename(binary))
        shutil.copy(binary, exe)
        # Its first run is over in ~8 ms, before the probes attached at its exec are live
        # (a registration after idle waits for an RCU grace period, 7-18 ms here): counted,
        # not required. The probes stay on the file: the next run is seen from its start.
        self.go_client(exe, f"/api/go/{name}/first", 3)
        # The exec is read on the agent's next poll (up to 20 ms) and attached after it, so
        # a second run started at once can be over before then too: wait for the attach.
        wait_until(lambda: any(l["path"] == exe and l["attached"] for l in self.agent.status()["tls"]), 10)
        self.go_client(exe, f"/api/go/{name}/again", 3)
        prefix = f"/api/go/{name}/again/"
        calls = self.go_calls(prefix, 6)
        client = [c for c in calls if c["role"] == "client"]
        server = [c for c in calls if c["role"] == "server"]
        why = json.dumps({"lost": self.agent.status()["counters"]["lost"], "tls": self.agent.status()["tls"],
                          "paths": sorted((c["role"], c["request"]["path"]) for c in calls)})
        self.assertEqual(sorted(c["request"]["path"] for c in client), [f"{prefix}{i}" for i in range(3)], why)
        self.assertEqual(len(server), 3, why)
        comm = os.path.basename(binary)[:15]
        for c in client:
            self.assertEqual(c["process"]["comm"], comm)
            self.assertEqual(c["tls_lib"], "go")
            self.assertEqual(c["protocol"], "http/1.1")
            self.assertEqual(c["response"]["status"], 200)
            self.assertEqual(c["conn"]["remote"]["port"], self.nginx.port)
        self.assertEqual(len({c["process"]["pid"] for c in client}), 1)
        for c in server:
            self.assertEqual(c["process"]["pid"], self.nginx.pid)
            self.assertEqual(c["tls_lib"], "openssl-3")
        first = [c for c in self.calls(f"/api/go/{name}/first/") if c["role"] == "client"]
        print(f"{name}: first run's client-side calls captured: {len(first)} of 3")
        libs = {l["path"]: l for l in self.agent.status()["tls"]}
        self.assertTrue(libs[exe]["attached"], libs)
        self.assertEqual(libs[exe]["lib"], "go")

    def test_go_client_against_nginx(self):
        require_root(self)
        self.check_go_client(GO_PEER, "plain")

    def test_stripped_go_client_against_nginx(self):
        require_root(self)
        self.check_go_client(GO_PEER_STRIPPED, "stripped")

    def check_go_h2_server(self, binary, name):
        server = Process([binary, "server", "127.0.0.1:0", os.path.join(self.nginx.dir, "cert.pem"),
                          os.path.join(self.nginx.dir, "key.pem")], stdout=subprocess.PIPE)
        self.addCleanup(server.proc.stdout.close)
        self.addCleanup(server.stop)
        port = int(server.proc.stdout.readline())
        # A server is long-lived: its requests come after its probes are in place
        # (attached at its exec, a few ms here; more on a loaded machine). HTTP/2
        # needs the connection from its start (HPACK state), so the test waits.
        exe = os.path.realpath(binary)
        self.assertTrue(wait_until(lambda: any(l["path"] == exe and l["attached"] and l["processes"] >= 1
                                               for l in self.agent.status()["tls"]), 10),
                        json.dumps(self.agent.status()["tls"]))
        prefix = f"/api/go/h2{name}/"
        urls = [f"https://127.0.0.1:{port}{prefix}{i}" for i in range(3)]
        curl = subprocess.run([CURL, "-sk", "--http2", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                               "-w", "%{http_version} %{response_code}\n", *urls],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(curl.returncode, 0, curl.stderr)
        self.assertEqual(curl.stdout.split(), ["2", "200"] * 3)
        calls = self.go_calls(prefix, 6)
        why = json.dumps({"lost": self.agent.status()["counters"]["lost"], "tls": self.agent.status()["tls"],
                          "paths": sorted((c["role"], c["request"]["path"]) for c in calls)})
        srv = [c for c in calls if c["role"] == "server"]
        cli = [c for c in calls if c["role"] == "client"]
        self.assertEqual(sorted(c["request"]["path"] for c in srv), [f"{prefix}{i}" for i in range(3)], why)
        self.assertEqual(len(cli), 3, why)
        for c in srv:
            self.assertEqual(c["process"]["pid"], server.pid)
            self.assertEqual(c["tls_lib"], "go")
            self.assertEqual(c["protocol"], "http/2")
            self.assertEqual(c["response"]["status"], 200)
            self.assertEqual(c["conn"]["local"]["port"], port)
        for c in cli:
            self.assertEqual(c["process"]["comm"], "curl")
            self.assertEqual(c["protocol"], "http/2")
        r = self.agent.vigil("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"go1\.\d+\S*\s+\d+\s+\S*" + os.path.basename(binary) +
                         r"\s+crypto/tls\.\(\*Conn\)\.Write", r.stdout)

    def test_go_h2_server_against_curl(self):
        require_root(self)
        self.check_go_h2_server(GO_PEER, "plain")

    def test_stripped_go_h2_server_against_curl(self):
        require_root(self)
        self.check_go_h2_server(GO_PEER_STRIPPED, "stripped")


if __name__ == "__main__":
    unittest.main()
