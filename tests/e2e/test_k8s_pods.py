"""E2E (issue 12): pod metadata from the Kubernetes API. An HTTPS server (a CA and a
bearer token made by the test) replays an API server's answers (tests/e2e/fixtures/k8s:
a paged pod list of node-a, a watch with ADDED, MODIFIED, DELETED, a bookmark and the
410 Expired error, the relist after it). vigild lists with fieldSelector=spec.nodeName,
follows the continue token, watches from the list's resourceVersion, relists on 410 and
watches from the new one. Processes run in cgroups named as the kubelet names them
(kubepods/besteffort/pod<uid>/<container id>) under a cgroup this test makes: their
events carry namespace, pod, container, workload and the configured labels; the
inventory keys the service by workload; a policy with selector.pods enforces on the
pod as soon as the watch brings it, and on a pod whose cgroup appears later as soon as
it appears (both windows measured and printed)."""
import json
import os
import queue
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vigil_e2e import CURL, PY, Agent, TestCA, cgroup2_root, disable_and_unpin, free_port, http_server, require_root, wait_until

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures/k8s")
CRASHES = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "k8s_watch")
NODE = "node-a"
TOKEN = "vigil-e2e-token-" + str(random.randrange(1 << 40))


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


class ApiServer:
    """Answers GET /api/v1/pods like the API server the fixtures came from: 401 without
    the token, 400 for another selector, the two list pages (then the relist after a
    410), and watches that stream whatever the test puts in `events` (None ends one)."""

    def __init__(self, d):
        ca = TestCA(d, "k8s")
        cert, key = ca.issue("apiserver", "IP:127.0.0.1")
        self.ca = ca.ca
        self.requests = []  # (kind, query) in arrival order
        self.events = queue.Queue()
        self.lists = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, code, body):
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.send(401, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                                          '"message":"Unauthorized","reason":"Unauthorized","code":401}')
                if url.path != "/api/v1/pods" or q.get("fieldSelector") != f"spec.nodeName={NODE}":
                    return self.send(400, '{"kind":"Status","status":"Failure","message":"bad request","code":400}')
                if q.get("watch") in ("1", "true"):
                    owner.requests.append(("watch", q))
                    return self.watch()
                owner.requests.append(("list", q))
                if q.get("continue"):
                    return self.send(200, fixture("list-page2.json"))
                owner.lists += 1
                self.send(200, fixture("list-page1.json" if owner.lists == 1 else "list-after-410.json"))

            def watch(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                while True:
                    try:
                        line = owner.events.get(timeout=0.2)
                    except queue.Empty:
                        if owner.closing:
                            return
                        continue
                    if line is None:
                        self.wfile.write(b"0\r\n\r\n")
                        return
                    data = (line.rstrip("\n") + "\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                    if '"type":"ERROR"' in line:  # the server ends a watch after its error
                        self.wfile.write(b"0\r\n\r\n")
                        return

        self.closing = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def of(self, kind):
        return [q for k, q in self.requests if k == kind]

    def stop(self):
        self.closing = True
        self.httpd.shutdown()
        self.httpd.server_close()


# Connects to 127.0.0.1:PORT every 5 ms for SECONDS; prints the CLOCK_MONOTONIC ns of
# its start and of each change of outcome.
PROBE = r'''
import errno, json, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic_ns(); out = [["start", start]]; last = None
while time.monotonic_ns() - start < seconds * 1e9:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port)); r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    if r != last:
        out.append([r, time.monotonic_ns()]); last = r
    if r == "EPERM": break
    time.sleep(0.005)
print(json.dumps(out))
'''


class PodMetadata(unittest.TestCase):
    def setUp(self):
        require_root(self)
        self.dir = tempfile.mkdtemp(prefix="vigil-k8s-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.api = ApiServer(self.dir)
        self.addCleanup(self.api.stop)
        self.token = os.path.join(self.dir, "token")
        with open(self.token, "w") as f:
            f.write(TOKEN + "\n")
        tag = f"{os.getpid()}-{random.randrange(1 << 30)}"
        self.cg_top = f"{cgroup2_root()}/vigil-e2e-k8s-{tag}"
        self.cg_dirs = []
        self.addCleanup(self.remove_cgroups)
        self.pins = f"/sys/fs/bpf/vigil-e2e-k8s-{tag}"
        self.poldir = os.path.join(self.dir, "policies")
        os.makedirs(self.poldir)
        self.pods = {}
        for name in ("list-page1.json", "list-page2.json", "list-after-410.json"):
            for item in json.loads(fixture(name))["items"]:
                self.pods[item["metadata"]["name"]] = item
        self.agent = None

    def remove_cgroups(self):
        for d in reversed(self.cg_dirs):
            if os.path.isdir(d):
                os.rmdir(d)
        if os.path.isdir(self.cg_top):
            os.rmdir(self.cg_top)

    def tearDown(self):
        disable_and_unpin(self.agent, self.pins)

    def pod_cgroup(self, name):
        """kubepods/besteffort/pod<uid>/<container id> of the pod's first container, made now."""
        pod = self.pods[name]
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("://")[1]
        path = f"{self.cg_top}/kubepods/besteffort/pod{pod['metadata']['uid']}/{cid}"
        parts = path[len(self.cg_top) + 1:].split("/")
        for i in range(1, len(parts) + 1):
            d = f"{self.cg_top}/" + "/".join(parts[:i])
            if not os.path.isdir(d):
                os.makedirs(d)
                self.cg_dirs.append(d)
        return path

    @staticmethod
    def mover(cgroup):
        def move():
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        return move

    def run_in(self, cgroup, args, **kw):
        return subprocess.run(args, preexec_fn=self.mover(cgroup), capture_output=True, text=True, timeout=30, **kw)

    def probe_in(self, cgroup, port):
        """The connect loop, started in `cgroup`; communicate() gives its JSON."""
        return subprocess.Popen([PY, "-c", PROBE, str(port), "5"], preexec_fn=self.mover(cgroup),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def start_agent(self, port):
        """vigild with pod metadata from the API server at 127.0.0.1:port."""
        self.agent = Agent(f"""kubernetes:
  enabled: true
  api_server: https://127.0.0.1:{port}
  token_file: {self.token}
  ca_file: {self.api.ca}
""", env={"VIGIL_NODE_NAME": NODE})
        self.agent.start()

    def status(self):
        st = self.agent.status()
        return st["kubernetes"] if st else {}

    def test_list_watch_relist_enrich_and_select(self):
        os.makedirs(self.cg_top)
        web_cg = self.pod_cgroup("web-5d8f7c9b7-xk2p9")
        api_cg = self.pod_cgroup("api-7c9d8b6f5-q4w8z")
        with open(os.path.join(self.poldir, "api.yaml"), "w") as f:
            f.write("""apiVersion: vigil/v1
kind: EgressPolicy
metadata: {name: shop-api}
spec:
  mode: enforce
  selector:
    pods: {namespace: shop, matchLabels: {app: api}}
  allowLoopback: false
  egress:
    - to: [{cidr: 127.0.0.2/32}]
""")
        self.agent = Agent(f"""policies:
  dir: {self.poldir}
  pin_dir: {self.pins}
kubernetes:
  enabled: true
  api_server: https://127.0.0.1:{self.api.port}
  token_file: {self.token}
  ca_file: {self.api.ca}
  labels: [app, tier, version]
""", env={"VIGIL_NODE_NAME": NODE})
        self.agent.start()
        port = free_port()
        server, root = http_server(port)
        self.addCleanup(shutil.rmtree, root, True)
        self.addCleanup(server.stop)

        # The list: two pages (the continue token followed), then a watch from its resourceVersion.
        self.assertTrue(wait_until(lambda: self.status().get("watching"), 15), self.status())
        st = self.status()
        self.assertEqual((st["synced"], st["pods"], st["lists"]), (True, 4, 1), st)
        lists = self.api.of("list")
        self.assertEqual([q.get("continue") for q in lists],
                         [None, json.loads(fixture("list-page1.json"))["metadata"]["continue"]])
        watch = self.api.of("watch")[0]
        self.assertEqual((watch["resourceVersion"], watch["allowWatchBookmarks"]), ("48213", "true"))

        # Before the watch brings pod api, its processes are not selected.
        probe = self.run_in(api_cg, [PY, "-c", PROBE, str(port), "0.05"])
        self.assertEqual(json.loads(probe.stdout)[1][0], "ok", probe.stderr)

        # A request from pod web: the event names the pod, its container and workload.
        marker = f"k8s={os.getpid()}"  # a 200 (a 404 would not enter the inventory)
        r = self.run_in(web_cg, [CURL, "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/index.html?{marker}"])
        self.assertEqual(r.returncode, 0, r.stderr)

        def web_call():
            return next((e for e in self.agent.events() if e["kind"] == "api_call" and e["role"] == "client"
                         and e["request"].get("query") == marker), None)
        e = wait_until(web_call, 10)
        self.assertIsNotNone(e)
        proc = e["process"]
        self.assertEqual(proc["pod_uid"], self.pods["web-5d8f7c9b7-xk2p9"]["metadata"]["uid"])
        self.assertEqual((proc["namespace"], proc["pod"], proc["container"]), ("shop", "web-5d8f7c9b7-xk2p9", "web"))
        self.assertEqual(proc["workload"], {"kind": "Deployment", "name": "web"})
        self.assertEqual(proc["labels"], {"app": "web", "tier": "frontend"})  # the configured subset
        found = wait_until(lambda: next((x for x in self.agent.events() if x["kind"] == "api_discovered"
                                         and x["role"] == "client"
                                         and x["endpoint"]["path"] == "/index.html"), None), 10)
        self.assertIsNotNone(found, [x for x in self.agent.events() if x["kind"] == "api_discovered"])
        self.assertEqual(found["service"], "shop/web")  # the inventory keys services by workload

        # The watch: pod api ADDED (now selected: its next connect is denied), cart
        # MODIFIED, web DELETED, a bookmark.
        lines = fixture("watch-1.jsonl").splitlines()
        p = self.probe_in(api_cg, port)
        time.sleep(0.5)  # connecting, allowed
        pushed = time.monotonic_ns()
        self.api.events.put(lines[0])
        stdout, stderr = p.communicate(timeout=30)
        out = json.loads(stdout)
        self.assertEqual(out[1][0], "ok", out)
        denied = [t for r, t in out[1:] if r == "EPERM"]
        self.assertTrue(denied, (out, stderr))
        known_window_ms = (denied[0] - pushed) / 1e6
        for line in lines[1:4]:
            self.api.events.put(line)
        self.assertTrue(wait_until(lambda: self.status().get("watch_events") == 3, 10), self.status())
        self.assertEqual(self.status()["pods"], 4)  # web gone, api added
        deny = wait_until(lambda: next((x for x in self.agent.events() if x["kind"] == "egress"
                                        and x["verdict"] == "deny"), None), 10)
        self.assertIsNotNone(deny)
        self.assertEqual(deny["policy"], "shop-api")
        self.assertEqual((deny["process"]["namespace"], deny["process"]["pod"]), ("shop", "api-7c9d8b6f5-q4w8z"))
        self.assertEqual(deny["process"]["workload"], {"kind": "Deployment", "name": "api"})

        # 410 Expired: a relist (no continue token), then a watch from the relist's version.
        self.api.events.put(lines[4])
        self.assertTrue(wait_until(lambda: self.status().get("relists_gone") == 1 and self.status().get("watching")
                                   and len(self.api.of("watch")) == 2, 15), self.status())
        st = self.status()
        self.assertEqual((st["lists"], st["pods"]), (2, 5), st)
        self.assertEqual(self.api.of("list")[-1].get("continue"), None)
        self.assertEqual(self.api.of("watch")[-1]["resourceVersion"], "48402")

        # Pod api-…-m2n6r came with the relist; its cgroup appears only now (the
        # container starts): its first connects are judged as soon as the cgroup is seen.
        api2_cg = self.pod_cgroup("api-7c9d8b6f5-m2n6r")
        stdout, stderr = self.probe_in(api2_cg, port).communicate(timeout=30)
        out = json.loads(stdout)
        start = out[0][1]
        denied = [t for r, t in out[1:] if r == "EPERM"]
        self.assertTrue(denied, out)
        start_window_ms = (denied[0] - start) / 1e6
        print(f"\npod metadata: watch ADDED -> first denied connect {known_window_ms:.1f} ms; "
              f"container start (new cgroup, pod known) -> first denied connect {start_window_ms:.1f} ms "
              f"(first connect {'allowed' if out[1][0] == 'ok' else 'denied'})", file=sys.stderr)

        # Stopping the agent ends the watch (no hang on the open stream).
        t0 = time.monotonic()
        self.agent.vigil("policy", "disable")
        self.assertEqual(self.agent.stop(), 0)
        self.assertLess(time.monotonic() - t0, 10)

    def test_security_f16_wrongly_typed_replies_do_not_abort_the_agent(self):
        """Security review F16: a watch event with "controller":"yes", a numeric
        resourceVersion or an ERROR whose code is a string threw in the watcher thread:
        std::terminate, vigild gone. Each is now a field not there."""
        self.start_agent(self.api.port)
        self.assertTrue(wait_until(lambda: self.status().get("watching"), 15), self.status())
        for name in ("owner-controller-string.jsonl", "rv-number.jsonl", "error-code-string.jsonl"):
            with open(os.path.join(CRASHES, name)) as f:
                self.api.events.put(f.read())
        # The ERROR ends that watch; the watcher lists or watches again, alive.
        self.assertTrue(wait_until(lambda: len(self.api.of("watch")) >= 2 and self.status().get("watching"), 20),
                        self.status())
        self.assertIsNone(self.agent.proc.proc.poll(), "vigild ended")
        st = self.status()
        self.assertEqual(st["watch_events"], 2, st)  # the ADDED and the MODIFIED, pod u1
        self.assertEqual(st["pods"], 5, st)
        self.assertIn("watch pods: gone (0)", st.get("last_error", ""), st)

    def test_a_dead_api_server_does_not_hold_the_agent(self):
        """Nothing listens at the API server's address: vigild starts, observes, says why
        it has no pod metadata, and retries."""
        dead = free_port()
        self.start_agent(dead)
        st = wait_until(lambda: self.status() if self.status().get("errors", 0) >= 1 else None, 10)
        self.assertIsNotNone(st)
        self.assertFalse(st["synced"])
        self.assertIn(f"127.0.0.1:{dead}", st["last_error"])
        port = free_port()
        server, root = http_server(port)
        self.addCleanup(shutil.rmtree, root, True)
        self.addCleanup(server.stop)
        subprocess.run([CURL, "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/alive"], check=True, timeout=10)
        self.assertTrue(wait_until(lambda: any(e["kind"] == "api_call" and e["request"]["path"] == "/alive"
                                               for e in self.agent.events()), 10))
        self.assertIn("kubernetes:", self.agent.log())

    def test_a_wrong_token_is_named(self):
        with open(self.token, "w") as f:
            f.write("not-the-token\n")
        self.start_agent(self.api.port)
        st = wait_until(lambda: self.status() if self.status().get("last_error") else None, 10)
        self.assertIsNotNone(st)
        self.assertIn("HTTP 401: Unauthorized", st["last_error"])

    def test_auto_without_an_api_server_runs_without_pod_metadata(self):
        """enabled: auto, a token file, but no API server known: a warning, no pod metadata."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}
        self.agent = Agent(f"""kubernetes:
  enabled: auto
  token_file: {self.token}
""", env={"VIGIL_NODE_NAME": NODE})
        self.agent.env = {**env, "VIGIL_NODE_NAME": NODE}
        self.agent.start()
        self.assertEqual(self.agent.status()["kubernetes"], {"enabled": False})
        self.assertIn("kubernetes: no API server", self.agent.log())

    def test_missing_token_file_stops_the_start(self):
        """kubernetes.enabled: true with no token file: an error naming the file, exit 1."""
        cfg = os.path.join(self.dir, "vigil.yaml")
        with open(cfg, "w") as f:
            f.write(f"""control_socket: {self.dir}/vigil.sock
data_dir: {self.dir}/data
kubernetes:
  enabled: true
  api_server: https://127.0.0.1:{self.api.port}
  token_file: {self.dir}/no-such-token
""")
        from vigil_e2e import VIGILD
        r = subprocess.run([VIGILD, "--config", cfg], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "VIGIL_NODE_NAME": NODE})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"kubernetes.token_file: ", r.stderr)
        self.assertIn("no-such-token", r.stderr)


if __name__ == "__main__":
    unittest.main()
