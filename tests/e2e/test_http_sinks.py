"""E2E (issue 11): the HTTP sinks against real peers on loopback.
webhook: a real nginx with TLS that requires a client certificate from a CA the
test makes; every event arrives in a body nginx logs; a 503 with Retry-After is
retried until a 200; a client certificate from another CA is refused and counted.
otlp: a receiver the test starts keeps each /v1/logs body; every body is then
decoded with the OTLP protobuf definitions from npm (tests/e2e/tools/otlp_check.js);
a partial success is honoured (the rejected record counted and reported as lost)."""
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest

from vigil_e2e import Agent, Process, REQUIRE_BPF, TestCA, free_port, nginx_prelude, listening, require_root, wait_until
from test_sinks import make_traffic

BUILD_NPM = os.path.join(os.path.dirname(os.environ.get("VIGIL_BIN_DIR", "../../build/bin")), "npm")
OTLP_ROOT = os.path.join(BUILD_NPM, "node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js")


class MtlsNginx:
    """nginx: TLS, client certificates required (ssl_verify_client on), each request's status,
    client verification and body in access.log; 503 + Retry-After while the file `fail` exists."""

    def __init__(self, d, ca, cert, key):
        self.d, self.port, self.backend = d, free_port(), free_port()
        self.log = f"{d}/access.log"
        self.fail = f"{d}/fail"
        conf = f"{d}/nginx.conf"
        with open(conf, "w") as f:
            f.write(nginx_prelude(d) + f"""  log_format bodies escape=none '$status|$ssl_client_verify|$http_content_type|$request_body';
  client_body_buffer_size 4m;
  client_max_body_size 4m;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_client_certificate {ca};
    ssl_verify_client on;
    access_log {self.log} bodies;
    location /ingest {{
      if (-f {self.fail}) {{ add_header Retry-After 1 always; return 503; }}
      proxy_pass http://127.0.0.1:{self.backend}/ok;
    }}
  }}
  server {{
    listen 127.0.0.1:{self.backend};
    access_log off;
    location / {{ return 200 "ok"; }}
  }}
}}
""")
        self.proc = Process(["/usr/sbin/nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        if not wait_until(lambda: listening("127.0.0.1", self.port), 10):
            self.proc.stop()
            raise RuntimeError("nginx did not start")

    def requests(self):
        """[(status, client verify, content type, body)] in the order nginx answered."""
        try:
            with open(self.log) as f:
                return [tuple(line.rstrip("\n").split("|", 3)) for line in f if line.count("|") >= 3]
        except FileNotFoundError:
            return []

    def events(self):
        out = []
        for status, _, _, body in self.requests():
            if status == "200":
                out.extend(json.loads(body))
        return out

    def stop(self):
        self.proc.stop(signal.SIGQUIT)


def connection_events(agent):
    """The connection events of this test's own traffic (nginx's proxying makes more of its own)."""
    return [e for e in agent.events() if e["kind"] == "connection" and e["process"]["pid"] == os.getpid()]


def sink_status(agent, name):
    return next(s for s in agent.status()["sinks"] if s["name"] == name)


class WebhookSink(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="vigil-webhook-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ca = TestCA(self.dir, "good")
        self.server_cert, self.server_key = self.ca.issue("server", "IP:127.0.0.1")
        self.nginx = MtlsNginx(self.dir, self.ca.ca, self.server_cert, self.server_key)
        self.addCleanup(self.nginx.stop)

    def agent_with(self, cert, key):
        agent = Agent(extra_config=textwrap.indent(textwrap.dedent(f"""\
            - type: webhook
              url: https://127.0.0.1:{self.nginx.port}/ingest
              ca: {self.ca.ca}
              client_cert: {cert}
              client_key: {key}
              kinds: [connection, lost]
              headers: {{X-Vigil-Test: "1"}}
            """), "    "))
        self.addCleanup(agent.cleanup)
        return agent.start()

    def test_events_arrive_over_mtls_and_a_503_is_retried_until_a_200(self):
        cert, key = self.ca.issue("vigil-agent")
        agent = self.agent_with(cert, key)
        make_traffic(20, free_port())
        want = lambda: {e["seq"] for e in connection_events(agent)}
        self.assertTrue(wait_until(lambda: len(want()) >= 40 and want() <= {e["seq"] for e in self.nginx.events()},
                                   20), (len(want()), self.nginx.requests()[-3:], agent.status()["sinks"]))
        first = self.nginx.requests()
        self.assertTrue(all(r[1] == "SUCCESS" and r[2] == "application/json" for r in first), first[:3])

        # The receiver fails with 503 and Retry-After: 1; events wait, then arrive.
        open(self.nginx.fail, "w").close()
        make_traffic(10, free_port())
        self.assertTrue(wait_until(lambda: any(r[0] == "503" for r in self.nginx.requests()), 20))
        self.assertTrue(wait_until(lambda: sink_status(agent, "webhook")["retries"] >= 1, 10))
        self.assertIn("503", sink_status(agent, "webhook")["last_error"])
        os.unlink(self.nginx.fail)
        self.assertTrue(wait_until(lambda: want() <= {e["seq"] for e in self.nginx.events()}, 20),
                        want() - {e["seq"] for e in self.nginx.events()})
        statuses = [r[0] for r in self.nginx.requests()]
        self.assertEqual(statuses[-1], "200")
        seqs = [e["seq"] for e in self.nginx.events()]
        dedup = [s for i, s in enumerate(seqs) if s not in seqs[:i]]
        self.assertEqual(dedup, sorted(dedup), "in order")
        st = sink_status(agent, "webhook")
        self.assertTrue(st["spooled"])
        self.assertEqual(st["rejected"], 0)
        self.assertEqual(sum(st["dropped"].values()), 0)

    def test_a_client_certificate_from_another_ca_is_refused_and_counted(self):
        rogue = TestCA(self.dir, "rogue")
        cert, key = rogue.issue("intruder")
        agent = self.agent_with(cert, key)
        make_traffic(5, free_port())
        self.assertTrue(wait_until(lambda: sink_status(agent, "webhook")["rejected"] >= 1, 20),
                        agent.status()["sinks"])
        st = sink_status(agent, "webhook")
        self.assertIn("HTTP 400", st["last_reject"])
        self.assertTrue(all(r[0] == "400" and r[1].startswith("FAILED") for r in self.nginx.requests()),
                        self.nginx.requests()[:3])
        self.assertEqual(self.nginx.events(), [])
        # The refusal is reported: a lost{source: sink_webhook} event on the other sinks.
        self.assertTrue(wait_until(lambda: any(e["kind"] == "lost" and e["lost"]["source"] == "sink_webhook"
                                               for e in agent.events()), 10))


class OtlpReceiver:
    """POST /v1/logs: each body kept in a file; the first answers can be scripted."""

    def __init__(self, d, port=None):
        self.d, self.port, self.bodies, self.answers = d, port or free_port(), [], []
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, reply = recv.answers.pop(0) if recv.answers else (200, b"{}")
                if status == 200 and self.path == "/v1/logs" and self.headers["Content-Type"] == "application/json":
                    path = os.path.join(recv.d, f"body-{len(recv.bodies):05}.json")
                    with open(path, "wb") as f:
                        f.write(body)
                    recv.bodies.append(path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class OtlpSink(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if not os.path.exists(OTLP_ROOT):
            msg = f"the OTLP protobuf definitions are not installed ({OTLP_ROOT}; scripts/install-validators.sh)"
            if REQUIRE_BPF:
                self.fail(msg)
            self.skipTest(msg)
        self.dir = tempfile.mkdtemp(prefix="vigil-otlp-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def decode(self, bodies):
        r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "tools/otlp_check.js"), *bodies],
                           capture_output=True, text=True, env={**os.environ, "VIGIL_OTLP_ROOT": OTLP_ROOT},
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["errors"], [])
        return out

    def test_every_event_is_a_log_record_the_otlp_definitions_decode(self):
        rx = OtlpReceiver(self.dir)
        self.addCleanup(rx.stop)
        rx.answers = [(503, b'{"message":"busy"}'),
                      (200, b'{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"one too old"}}')]
        agent = Agent(extra_config=textwrap.indent(textwrap.dedent(f"""\
            - type: otlp
              endpoint: http://127.0.0.1:{rx.port}/
              kinds: [connection, lost]
            """), "    "))
        self.addCleanup(agent.cleanup)
        agent.start()
        make_traffic(20, free_port())
        want = lambda: {e["seq"] for e in connection_events(agent)}
        got = lambda: {r["attributes"]["seq"] for r in self.decode(rx.bodies)["records"]}
        self.assertTrue(wait_until(lambda: len(want()) >= 40 and len(rx.bodies) >= 2, 20), agent.status()["sinks"])
        self.assertTrue(wait_until(lambda: want() <= got(), 20), want() - got())
        out = self.decode(rx.bodies)
        self.assertEqual(out["resource"]["service.name"], "vigil")
        self.assertEqual(out["resource"]["host.name"], agent.status()["node"])
        self.assertEqual(out["resource"]["service.instance.id"], agent.status()["boot_id"])
        by_seq = {r["attributes"]["seq"]: r for r in out["records"]}
        for e in connection_events(agent):
            r = by_seq[e["seq"]]
            self.assertEqual(r["body"], "connection")
            self.assertEqual(r["severityNumber"], 9)
            self.assertEqual(r["scope"]["name"], "vigil")
            self.assertEqual(r["attributes"]["boot_id"], e["boot_id"])
            self.assertEqual(r["attributes"]["process"]["pid"], e["process"]["pid"])
            self.assertEqual(r["attributes"]["conn"]["remote"], e["conn"]["remote"])
            self.assertEqual(r["attributes"]["state"], e["state"])
            self.assertEqual(int(r["timeUnixNano"]) // 1000, int(_ts_us(e["time"])))
        st = sink_status(agent, "otlp")
        self.assertGreaterEqual(st["retries"], 1)  # the 503
        self.assertEqual(st["rejected"], 1)         # the partial success
        self.assertIn("one too old", st["last_reject"])
        self.assertTrue(wait_until(lambda: any(e["kind"] == "lost" and e["lost"]["source"] == "sink_otlp"
                                               for e in agent.events()), 10))

    def test_a_collector_outage_across_a_sigkill_loses_nothing(self):
        """The collector is down; vigild spools, is SIGKILLed, restarts and spools more; the collector
        comes up: every event of both runs arrives, decoded, in order per boot_id, no gap in seq."""
        port = free_port()  # nothing listens yet
        agent = Agent(extra_config=textwrap.indent(textwrap.dedent(f"""\
            - type: otlp
              endpoint: http://127.0.0.1:{port}
              kinds: [connection]
              fsync_interval_ms: 100
            """), "    "))
        self.addCleanup(agent.cleanup)
        agent.start()
        make_traffic(30, free_port())
        self.assertTrue(wait_until(lambda: len(connection_events(agent)) >= 60, 20))
        first = connection_events(agent)
        self.assertTrue(wait_until(lambda: sink_status(agent, "otlp")["spool_records"] >= len(first), 10),
                        sink_status(agent, "otlp"))
        time.sleep(0.3)  # past the fsync interval
        agent.stop(signal.SIGKILL)
        agent.restart()
        make_traffic(10, free_port())
        boot1 = first[0]["boot_id"]
        self.assertTrue(wait_until(lambda: len([e for e in connection_events(agent) if e["boot_id"] != boot1]) >= 20, 20))
        second = [e for e in connection_events(agent) if e["boot_id"] != boot1]
        rx = OtlpReceiver(self.dir, port)  # the collector comes back
        self.addCleanup(rx.stop)
        want = {(e["boot_id"], e["seq"]) for e in first + second}
        got = lambda: [(r["attributes"]["boot_id"], r["attributes"]["seq"]) for r in self.decode(rx.bodies)["records"]]
        self.assertTrue(wait_until(lambda: want <= set(got()), 40), f"{len(want & set(got()))} of {len(want)} arrived")
        order = got()
        for boot in {boot1, second[0]["boot_id"]}:
            seqs = [s for b, s in order if b == boot]
            dedup = [s for i, s in enumerate(seqs) if s not in seqs[:i]]  # at least once: repeats allowed
            self.assertEqual(dedup, sorted(dedup), "in order")
            expected = sorted(s for b, s in want if b == boot)
            self.assertEqual([s for s in dedup if s in set(expected)], expected, "no gap")


def _ts_us(rfc3339):
    """An event's RFC 3339 time (UTC, up to 9 fractional digits) in microseconds since the epoch."""
    import datetime
    base, frac = rfc3339.rstrip("Z").split(".") if "." in rfc3339 else (rfc3339.rstrip("Z"), "0")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


if __name__ == "__main__":
    unittest.main()
