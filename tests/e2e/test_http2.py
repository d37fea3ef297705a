"""E2E (issue 5): HTTP/2 and gRPC. curl --http2 against nginx with h2 over TLS
(both sides seen at libssl); a gRPC-shaped call (HTTP/2 POST, content-type
application/grpc, grpc-status trailer) over cleartext h2c between curl and a
node http2 server (both sides seen at the socket syscalls)."""
import json
import os
import subprocess
import tempfile
import shutil
import textwrap
import unittest

from vigil_e2e import CURL, AgentCase, Nginx, Process, free_port, listening, wait_until

NODE = "/usr/bin/node"

GRPC_SERVER = textwrap.dedent("""
    const http2 = require('http2');
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('data', () => {});
      stream.on('end', () => {
        stream.respond({':status': 200, 'content-type': 'application/grpc'}, {waitForTrailers: true});
        stream.on('wantTrailers', () => stream.sendTrailers({'grpc-status': '0', 'grpc-message': 'OK'}));
        stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
      });
    });
    server.listen(Number(process.argv[1]), '127.0.0.1');
""")


class Http2Capture(AgentCase):

    def test_curl_http2_against_nginx_tls(self):
        nginx = Nginx(tls=True, http2=True)
        self.addCleanup(nginx.stop)
        wait_until(lambda: any(l["processes"] for l in self.agent.status()["tls"]), 10)
        p = subprocess.Popen([CURL, "-sk", "--http2", "-o", "/dev/null", f"https://127.0.0.1:{nginx.port}/api/h2/one",
                              "-o", "/dev/null", f"https://127.0.0.1:{nginx.port}/api/h2/two"])
        self.assertEqual(p.wait(20), 0)
        wait_until(lambda: len(self.calls("/api/h2/")) >= 4, 15)
        calls = self.calls("/api/h2/")
        self.assertEqual(sorted((c["role"], c["request"]["path"]) for c in calls),
                         [("client", "/api/h2/one"), ("client", "/api/h2/two"),
                          ("server", "/api/h2/one"), ("server", "/api/h2/two")], json.dumps(calls)[:2000])
        for c in calls:
            self.assertEqual(c["protocol"], "http/2")
            self.assertEqual(c["request"]["method"], "GET")
            self.assertEqual(c["request"]["host"], f"127.0.0.1:{nginx.port}")
            self.assertEqual(c["response"]["status"], 200)
            self.assertTrue(c["tls"])
            self.assertGreater(c["latency_ns"], 0)
            self.assertEqual(c["process"]["pid"], p.pid if c["role"] == "client" else nginx.pid)

    def test_grpc_shaped_call_over_h2c(self):
        port = free_port()
        server = Process([NODE, "-e", GRPC_SERVER, str(port)])
        self.addCleanup(server.stop)
        self.assertTrue(wait_until(lambda: listening("127.0.0.1", port), 15))
        d = tempfile.mkdtemp(prefix="vigil-grpc-")
        self.addCleanup(shutil.rmtree, d, True)
        msg = os.path.join(d, "msg")
        with open(msg, "wb") as f:
            f.write(bytes([0, 0, 0, 0, 5]) + b"hello")
        p = subprocess.Popen([CURL, "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-X", "POST",
                              "-H", "content-type: application/grpc", "-H", "te: trailers",
                              "--data-binary", f"@{msg}", f"http://127.0.0.1:{port}/helloworld.Greeter/SayHello"])
        self.assertEqual(p.wait(20), 0)
        wait_until(lambda: len(self.calls("/helloworld.")) >= 2, 15)
        calls = self.calls("/helloworld.")
        self.assertEqual(sorted(c["role"] for c in calls), ["client", "server"], json.dumps(calls)[:2000])
        for c in calls:
            self.assertEqual(c["protocol"], "grpc")
            self.assertEqual(c["grpc"], {"service": "helloworld.Greeter", "method": "SayHello", "status": 0})
            self.assertEqual(c["request"]["method"], "POST")
            self.assertEqual(c["response"]["status"], 200)
            self.assertFalse(c["tls"])
            self.assertEqual(c["process"]["pid"], p.pid if c["role"] == "client" else server.pid)


if __name__ == "__main__":
    unittest.main()
