"""E2E (issue 10): the API inventory. A small API served by python3 http.server
(a handler this test writes) and by nginx (plaintext and TLS), driven by curl and
python clients through a scripted set of calls (ids, uuids, dates, `me`, a
scanner's 404s, a JSON body with an email, a response with a card number, a
bearer JWT with alg none); the inventory, its findings, its OpenAPI (checked by
@redocly/cli), the diff against a declared spec, restarts (TERM and KILL), and
the least-privilege policy generated from it."""
import json
import os
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest
import urllib.request

from vigil_e2e import CURL, PY, REQUIRE_BPF, VIGIL, Agent, Nginx, Process, free_port, listening, require_root, wait_until

REDOCLY = os.environ.get("VIGIL_REDOCLY", "")

SERVER = textwrap.dedent("""
    import http.server, json, sys
    CARD = "4111 1111 1111 1111"
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def reply(self, code, obj=None):
            body = json.dumps(obj).encode() if obj is not None else b""
            self.send_response(code)
            if obj is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            p = self.path.split("?")[0]
            parts = p.strip("/").split("/")
            if p == "/users/me": return self.reply(200, {"id": 0, "email": "me@example.com"})
            if parts[0] == "users" and len(parts) == 2:
                return self.reply(200, {"id": int(parts[1]), "email": "user%s@example.com" % parts[1]})
            if parts[0] == "orders" and len(parts) == 2: return self.reply(200, {"order": parts[1], "card": CARD})
            if parts[0] == "reports" and len(parts) == 2: return self.reply(200, {"day": parts[1], "total": 3})
            if p == "/admin/stats": return self.reply(200, {"uptime": 1})
            if p == "/legacy/items": return self.reply(200, [{"id": 1}])
            if p == "/internal/debug": return self.reply(200, {"debug": True})
            if p == "/backup.zip": return self.reply(200, {"found": True})
            return self.reply(404, {"error": "not found"})
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/signup": return self.reply(201, {"id": "550e8400-e29b-41d4-a716-446655440000"})
            return self.reply(405)
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")

SPEC = textwrap.dedent("""
    openapi: 3.0.3
    info: {title: declared, version: "1"}
    paths:
      /users/{id}:
        get: {responses: {"200": {description: ok}}}
      /users/me:
        get: {responses: {"200": {description: ok}}}
      /orders/{orderId}:
        get: {responses: {"200": {description: ok}}}
      /reports/{day}:
        get: {responses: {"200": {description: ok}}}
      /signup:
        post: {responses: {"201": {description: ok}}}
      /legacy/items:
        get: {deprecated: true, responses: {"200": {description: ok}}}
      /health:
        get: {responses: {"200": {description: ok}}}
""")

JWT_NONE = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."  # {"alg":"none"}.{"sub":"admin"}.


def curl(*args):
    subprocess.run([CURL, "-s", "-o", "/dev/null", *args], check=False, timeout=10)


class Inventory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.agent = None
        if os.geteuid() != 0:
            return
        cls.tmp = tempfile.mkdtemp(prefix="vigil-apimap-")
        cls.spec = os.path.join(cls.tmp, "declared.yaml")
        with open(cls.spec, "w") as f:
            f.write(SPEC)
        cls.pins = f"/sys/fs/bpf/vigil-e2e-apimap-{os.getpid()}"
        cls.agent = Agent(f"""policies:
  dir: {cls.tmp}/policies.d
  pin_dir: {cls.pins}
apimap:
  declared_specs: [{cls.spec}]
""").start()
        server = os.path.join(cls.tmp, "api.py")
        with open(server, "w") as f:
            f.write(SERVER)
        cls.port = free_port()
        cls.api = Process([PY, server, str(cls.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: listening("127.0.0.1", cls.port), 10)
        cls.nginx = Nginx()
        cls.nginx_tls = Nginx(tls=True)
        cls.drive()

    @classmethod
    def drive(cls):
        base = f"http://127.0.0.1:{cls.port}"
        for i in range(1, 7):
            curl(f"{base}/users/{i}")
        curl(f"{base}/users/me")
        for u in ("550e8400-e29b-41d4-a716-446655440000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"):
            curl(f"{base}/orders/{u}")
        for d in ("2024-01-01", "2024-01-02", "2024-02-29"):
            curl(f"{base}/reports/{d}")
        curl("-H", f"Authorization: Bearer {JWT_NONE}", f"{base}/admin/stats")
        curl(f"{base}/legacy/items")
        curl(f"{base}/internal/debug")
        # A python client: a JSON body with an email.
        body = json.dumps({"email": "new@example.com", "name": "New"}).encode()
        req = urllib.request.Request(f"{base}/signup", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        for i in (7, 8):
            urllib.request.urlopen(f"{base}/users/{i}", timeout=10).read()
        # A scanner from its own address: 404s, then one real answer.
        for i in range(30):
            curl("--interface", "127.0.0.66", f"{base}/wp-admin/probe{i}.php")
        curl("--interface", "127.0.0.66", f"{base}/.env")
        curl("--interface", "127.0.0.66", f"{base}/backup.zip")
        # nginx, plaintext and TLS (once its libssl is attached).
        n = f"http://127.0.0.1:{cls.nginx.port}"
        for i in (42, 43, 44):
            curl(f"{n}/api/items/{i}")
        curl(f"{n}/api/v1/files/9fceb02d0ae598e95dc970b74767f19372d61af8.pdf")
        wait_until(lambda: any(l["attached"] and l["processes"] > 0 for l in cls.agent.status()["tls"]), 15)
        for i in (7, 8):
            curl("-k", f"https://127.0.0.1:{cls.nginx_tls.port}/api/items/{i}")
        wait_until(lambda: cls.find("nginx", "server", "GET", "/api/items/{itemId}", tls=True) is not None, 15)
        wait_until(lambda: cls.find("python3.11", "server", "GET", "/users/{id}", count=8) is not None, 15)

    @classmethod
    def tearDownClass(cls):
        if not cls.agent:
            return
        subprocess.run([VIGIL, "--socket", cls.agent.socket, "policy", "disable"], capture_output=True, timeout=20)
        for p in (cls.api, cls.nginx, cls.nginx_tls):
            p.stop()
        cls.agent.cleanup()
        subprocess.run(["rm", "-rf", cls.tmp, cls.pins])

    def setUp(self):
        require_root(self)

    @classmethod
    def endpoints(cls, *extra):
        r = cls.agent.vigil("map", "list", "-o", "json", *extra)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["endpoints"]

    @classmethod
    def find(cls, service, role, method, path, tls=None, count=1):
        for e in cls.endpoints():
            if (e["service"], e["role"], e["method"], e["path"]) == (service, role, method, path) and \
                    e["count"] >= count and (tls is None or e["tls"] == tls):
                return e
        return None

    def get(self, *key, **kw):
        e = self.find(*key, **kw)
        self.assertIsNotNone(e, f"{key} not in {sorted((x['service'], x['role'], x['path']) for x in self.endpoints())}")
        return e

    def test_1_endpoints_are_templated_with_auth_data_classes_and_latency(self):
        users = self.get("python3.11", "server", "GET", "/users/{id}")  # the declared spec's template wins
        self.assertEqual(users["count"], 8)
        self.assertEqual(users["params"], [{"mask": 1, "name": "id", "type": "integer"}])
        self.assertEqual(users["auth"], ["none"])
        self.assertIn("email", users["sensitive"])
        self.assertGreater(users["latency_ms"]["p99"], 0)
        self.assertEqual(users["status"], {"200": 8})
        self.assertFalse(users["tls"])
        self.get("python3.11", "server", "GET", "/users/me")
        self.get("curl", "client", "GET", "/users/me")
        orders = self.get("python3.11", "server", "GET", "/orders/{orderId}")
        self.assertEqual(orders["params"][0]["type"], "uuid")
        self.assertIn("payment_card", orders["sensitive"])
        self.assertEqual(self.get("python3.11", "server", "GET", "/reports/{day}")["params"][0]["type"], "date")
        admin = self.get("python3.11", "server", "GET", "/admin/stats")
        self.assertEqual(admin["auth"], ["jwt"])
        signup = self.get("python3.11", "server", "POST", "/signup")
        self.assertEqual(signup["request"]["schema"]["properties"]["email"]["format"], "email")
        self.assertEqual(signup["response"]["schema"]["properties"]["id"]["format"], "uuid")
        self.assertEqual(signup["status"], {"201": 1})
        self.get("python3.11", "client", "POST", "/signup")
        # Guessed templates where nothing is declared: nginx, plaintext and TLS.
        self.get("nginx", "server", "GET", "/api/items/{itemId}", tls=False)
        self.get("nginx", "server", "GET", "/api/items/{itemId}", tls=True)
        self.get("nginx", "server", "GET", "/api/v1/files/{fileId}.pdf")
        # Noise: the scanner's paths are no endpoints, but counted.
        paths = [e["path"] for e in self.endpoints()]
        self.assertFalse([p for p in paths if "wp-admin" in p or ".env" in p or "backup" in p], paths)
        inv = json.loads(self.agent.vigil("map", "export", "-o", "json").stdout)
        served = {s["name"]: s for s in inv["services"]}
        self.assertGreaterEqual(served["python3.11"]["unmatched_404"], 31)
        # Filters and the table.
        self.assertTrue(all(e["role"] == "client" for e in self.endpoints("--role", "client")))
        self.assertTrue(all(e["service"] == "nginx" for e in self.endpoints("--service", "nginx")))
        table = self.agent.vigil("map", "list")
        self.assertEqual(table.returncode, 0)
        self.assertIn("/orders/{orderId}", table.stdout)
        show = self.agent.vigil("map", "show", "GET", "/orders/6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                                "--service", "python3.11")
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("payment_card", show.stdout)
        self.assertEqual(self.agent.vigil("map", "show", "GET", "/nowhere").returncode, 1)
        # api_call events carry the template and the classes.
        calls = [e for e in self.agent.events() if e["kind"] == "api_call" and e["request"]["path"].startswith("/orders/")]
        self.assertTrue(calls)
        self.assertTrue(all(c["endpoint"] == "/orders/{orderId}" and "payment_card" in c["sensitive"] for c in calls))

    def test_2_findings_explain_each_risk(self):
        r = self.agent.vigil("map", "findings", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        found = {(f["id"], f["endpoint"]["path"]) for f in json.loads(r.stdout)["findings"] if f["service"] == "python3.11"}
        for want in [("jwt-alg-none", "/admin/stats"), ("jwt-no-exp", "/admin/stats"),
                     ("credentials-over-plaintext", "/admin/stats"),
                     ("unauthenticated-sensitive-data", "/orders/{orderId}"),
                     ("unauthenticated-sensitive-data", "/users/{id}"),
                     ("sequential-ids", "/users/{id}"),
                     ("shadow-api", "/internal/debug"), ("zombie-api", "/legacy/items")]:
            self.assertIn(want, found)
        self.assertNotIn(("shadow-api", "/users/{id}"), found)
        for f in json.loads(r.stdout)["findings"]:
            self.assertIn(f["owasp"], [f"API{i}" for i in range(1, 11)])
            self.assertNotIn("4111", f["evidence"])
            self.assertNotIn(JWT_NONE, f["evidence"])
        high = json.loads(self.agent.vigil("map", "findings", "--severity", "high", "-o", "json").stdout)["findings"]
        self.assertTrue(high and all(f["severity"] in ("high", "critical") for f in high))
        table = self.agent.vigil("map", "findings").stdout
        self.assertIn("fix:", table)
        self.assertIn("API2", table)
        # Each finding is an event once per endpoint.
        events = [(e["finding"]["id"], e["finding"]["service"], e["finding"]["endpoint"]["host"],
                   e["finding"]["endpoint"]["path"]) for e in self.agent.events() if e["kind"] == "finding"]
        self.assertEqual(len(events), len(set(events)))
        self.assertIn(("zombie-api", "python3.11", f"127.0.0.1:{self.port}", "/legacy/items"), events)

    def test_3_openapi_export_validates(self):
        if not (REDOCLY and os.access(REDOCLY, os.X_OK)):
            if REQUIRE_BPF:
                self.fail(f"@redocly/cli not installed at {REDOCLY!r} (make test runs scripts/install-validators.sh)")
            self.skipTest("@redocly/cli is not installed (npm unreachable?)")
        path = os.path.join(self.tmp, "api.yaml")
        r = self.agent.vigil("map", "export", "--openapi", "--service", "python3.11")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, "w") as f:
            f.write(r.stdout)
        lint = subprocess.run([REDOCLY, "lint", path], capture_output=True, text=True, timeout=120)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        doc = json.loads(self.agent.vigil("map", "export", "--openapi", "-o", "json").stdout)
        self.assertEqual(doc["openapi"], "3.1.0")
        op = doc["paths"]["/signup"]["post"]
        self.assertEqual(op["requestBody"]["content"]["application/json"]["schema"]["properties"]["email"]["format"],
                         "email")
        self.assertIn("jwtAuth", doc["components"]["securitySchemes"])
        self.assertEqual(doc["paths"]["/users/{id}"]["get"]["parameters"][0]["schema"]["type"], "integer")
        self.assertGreaterEqual(doc["paths"]["/users/{id}"]["get"]["x-vigil-count"], 8)
        jpath = os.path.join(self.tmp, "api.json")
        with open(jpath, "w") as f:
            json.dump(doc, f)
        lint = subprocess.run([REDOCLY, "lint", jpath], capture_output=True, text=True, timeout=120)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

    def test_4_diff_against_the_declared_spec_is_a_ci_gate(self):
        r = self.agent.vigil("map", "diff", "--spec", self.spec, "--service", "python3.11", "-o", "json")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        d = json.loads(r.stdout)
        self.assertIn({"method": "GET", "path": "/internal/debug"}, [{k: x[k] for k in ("method", "path")} for x in d["shadow"]])
        self.assertIn("/legacy/items", [x["path"] for x in d["zombie"]])
        self.assertIn({"method": "GET", "path": "/health"}, d["orphan"])
        self.assertNotIn("/users/{id}", [x["path"] for x in d["shadow"]])
        clean = os.path.join(self.tmp, "clean.yaml")
        with open(clean, "w") as f:
            f.write(SPEC.replace("get: {deprecated: true,", "get: {") +
                    "  /internal/debug:\n    get: {responses: {\"200\": {description: ok}}}\n"
                    "  /admin/stats:\n    get: {responses: {\"200\": {description: ok}}}\n"
                    "  /backup.zip:\n    get: {responses: {\"200\": {description: ok}}}\n")
        r = self.agent.vigil("map", "diff", "--spec", clean, "--service", "python3.11")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("openapi: [\n")
        r = self.agent.vigil("map", "diff", "--spec", bad)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.yaml", r.stderr)

    def test_5_exports_of_nodes_merge(self):
        a = os.path.join(self.tmp, "a.json")
        with open(a, "w") as f:
            f.write(self.agent.vigil("map", "export", "-o", "json").stdout)
        r = subprocess.run([VIGIL, "map", "merge", a, a], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        merged = json.loads(r.stdout)
        one = {(e["service"], e["role"], e["host"], e["method"], e["path"]): e["count"]
               for e in self.read_json(a)["endpoints"]}
        two = {(e["service"], e["role"], e["host"], e["method"], e["path"]): e["count"] for e in merged["endpoints"]}
        self.assertEqual(two, {k: 2 * v for k, v in one.items()})
        offline = subprocess.run([VIGIL, "map", "list", "--from", a, "-o", "json"], capture_output=True, text=True)
        self.assertEqual(len(json.loads(offline.stdout)["endpoints"]), len(one))

    @staticmethod
    def read_json(path):
        with open(path) as f:
            return json.load(f)

    def test_6_policy_from_the_inventory_allows_exactly_what_was_seen(self):
        gen = self.agent.vigil("policy", "generate", "--from-inventory", "--service", "curl", "--include-loopback")
        self.assertEqual(gen.returncode, 0, gen.stderr)
        self.assertIn("/usr/bin/curl", gen.stdout)
        self.assertIn(f"port: {self.port}", gen.stdout)
        path = os.path.join(self.tmp, "generated.yaml")
        with open(path, "w") as f:
            f.write(gen.stdout)
        applied = self.agent.vigil("policy", "apply", path, timeout=30)
        self.assertEqual(applied.returncode, 0, applied.stdout + applied.stderr)
        try:
            start = len(self.agent.events())
            curl(f"http://127.0.0.1:{self.port}/users/1")
            curl(f"http://127.0.0.1:{self.nginx.port}/api/items/42")
            # Something curl never called before: the policy must notice it.
            other = free_port()
            curl("--max-time", "2", f"http://127.0.0.1:{other}/")
            self.assertTrue(wait_until(lambda: any(e["kind"] == "egress" for e in self.agent.events()[start:]), 10))
            verdicts = [(e["dst"]["port"], e["verdict"]) for e in self.agent.events()[start:] if e["kind"] == "egress"]
            self.assertIn((other, "would_deny"), verdicts)
            self.assertNotIn((self.port, "would_deny"), verdicts)
            self.assertNotIn((self.nginx.port, "would_deny"), verdicts)
        finally:
            r = self.agent.vigil("policy", "disable", timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_7_the_inventory_survives_restarts_and_is_not_rediscovered(self):
        before = {(e["service"], e["role"], e["method"], e["path"]) for e in self.endpoints()}
        discovered = len([e for e in self.agent.events() if e["kind"] == "api_discovered"])
        self.assertGreaterEqual(discovered, len(before))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if sig == signal.SIGKILL:
                time.sleep(4)  # one store batch (3 s) after the last call
            self.agent.stop(sig)
            self.agent.restart()
            after = {(e["service"], e["role"], e["method"], e["path"]) for e in self.endpoints()}
            self.assertTrue(before <= after, sorted(before - after))
            curl(f"http://127.0.0.1:{self.port}/users/3")
            self.assertTrue(wait_until(lambda: self.get("python3.11", "server", "GET", "/users/{id}")["count"] >= 9, 10))
            status = self.agent.status()["inventory"]
            self.assertGreaterEqual(status["restored"], len(before))
            self.assertEqual(status["store_error"], "")
        time.sleep(1.5)
        self.assertEqual(len([e for e in self.agent.events() if e["kind"] == "api_discovered"]), discovered)


if __name__ == "__main__":
    unittest.main()
