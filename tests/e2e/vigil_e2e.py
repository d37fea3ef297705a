"""Helpers for the end-to-end tier: run vigild with a private config, real
servers on free loopback ports, and stop exactly the processes we started."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN_DIR = os.environ.get("VIGIL_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/bin"))
VIGILD = os.path.join(BIN_DIR, "vigild")
VIGIL = os.path.join(BIN_DIR, "vigil")
REQUIRE_BPF = os.environ.get("VIGIL_REQUIRE_BPF") == "1"


def require_root(test):
    if os.geteuid() != 0:
        if REQUIRE_BPF:
            test.fail("not root, and VIGIL_REQUIRE_BPF=1: the e2e tier needs root")
        test.skipTest("not root: the e2e tier loads BPF programs")


_handed_out = set()


def free_port(family=socket.AF_INET, addr="127.0.0.1"):
    """A port nothing listens on, never one this process was given before: two calls before
    either port is bound (nginx's TLS port and its backend) could otherwise get the same one,
    and nginx then proxies plain HTTP into its own TLS listener (the http_sinks flake)."""
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((addr, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_until(pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    return pred()


def listening(addr, port):
    """True once something accepts TCP connections on addr:port."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            s.connect((addr, port))
            return True
    except OSError:
        return False


def bpf_prog_ids():
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, check=True)
    return {p["id"] for p in json.loads(out.stdout or "[]")}


class Process:
    """A child we started; stop() ends exactly it."""

    def __init__(self, args, **kw):
        self.args = args
        self.proc = subprocess.Popen(args, **kw)

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        """Everything it wrote to its stdout pipe (after stop())."""
        with self.proc.stdout:
            return self.proc.stdout.read()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Agent:
    """vigild with its own temporary config, socket and events file."""

    def __init__(self, extra_config="", wrap=(), env=None):
        """wrap: a command vigild runs under (e.g. setpriv with a reduced bounding set);
        env: extra environment variables."""
        self.wrap = list(wrap)
        self.env = dict(os.environ, **(env or {}))
        self.dir = tempfile.mkdtemp(prefix="vigil-e2e-")
        self.socket = os.path.join(self.dir, "vigil.sock")
        self.events_path = os.path.join(self.dir, "events.jsonl")
        self.config = os.path.join(self.dir, "vigil.yaml")
        with open(self.config, "w") as f:
            f.write(f"""control_socket: {self.socket}
data_dir: {self.dir}/data
events:
  sinks:
    - type: stdout
    - type: file
      path: {self.events_path}
{extra_config}""")
        self.stdout = open(os.path.join(self.dir, "stdout.jsonl"), "w")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stderr = open(self.stderr_path, "w")
        self.proc = None

    def start(self):
        self.proc = Process(self.wrap + [VIGILD, "--config", self.config], stdout=self.stdout, stderr=self.stderr,
                            env=self.env)
        if not wait_until(lambda: self.status() is not None or self.proc.proc.poll() is not None, 20):
            raise RuntimeError("vigild did not answer on its socket: " + self.log())
        if self.proc.proc.poll() is not None:
            raise RuntimeError(f"vigild exited with {self.proc.proc.returncode}: " + self.log())
        return self

    def restart(self):
        """Starts vigild again with the same config, socket, pins and events file."""
        self.stdout = open(os.path.join(self.dir, "stdout.jsonl"), "a")
        self.stderr = open(self.stderr_path, "a")
        return self.start()

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def vigil(self, *args, timeout=10):
        return subprocess.run([VIGIL, "--socket", self.socket, *args], capture_output=True, text=True,
                              timeout=timeout)

    def status(self):
        if not os.path.exists(self.socket):
            return None
        r = self.vigil("status", "-o", "json")
        return json.loads(r.stdout) if r.returncode == 0 else None

    def events(self):
        """The agent's events in the file sink (not the chain's epoch records), without their chain field."""
        try:
            with open(self.events_path) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        for e in lines:
            e.pop("chain", None)
        return [e for e in lines if e.get("kind") != "epoch"]

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig) if self.proc else None
        self.stdout.close()
        self.stderr.close()
        return rc

    def cleanup(self):
        if self.proc and self.proc.proc.poll() is None:
            self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def cgroup2_root():
    """Where cgroup2 is mounted on this host (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    raise RuntimeError("no cgroup2 mount")


def disable_and_unpin(agent, pins):
    """A test's egress enforcement ends with it: `vigil policy disable` while its vigild
    runs, then the test's own pin directory goes (pinned state outlives the agent)."""
    if agent:
        if agent.proc and agent.proc.proc.poll() is None:
            agent.vigil("policy", "disable")
        agent.cleanup()
    subprocess.run(["/bin/rm", "-rf", pins])


def http_server(port, bind="127.0.0.1"):
    """python3's http.server serving an empty temp dir on a loopback port."""
    root = tempfile.mkdtemp(prefix="vigil-www-")
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("hello from vigil e2e\n")
    p = Process(["/usr/bin/python3", "-m", "http.server", str(port), "--bind", bind, "--directory", root],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    if not wait_until(lambda: listening(bind, port), 10):
        p.stop()
        raise RuntimeError(f"http.server on {bind}:{port} did not start")
    return p, root


def nginx_prelude(d):
    """The start of an nginx.conf for one process with every path under d, up to inside http {."""
    return f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
"""


class Nginx:
    """nginx on a free loopback port with its own config, one process (no master)."""

    def __init__(self, port=None, tls=False, http2=False):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="vigil-nginx-")
        listen = f"127.0.0.1:{self.port}"
        tls_conf = ""
        if tls:
            # A throw-away self-signed certificate for this server only.
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-keyout", os.path.join(self.dir, "key.pem"),
                            "-out", os.path.join(self.dir, "cert.pem")], check=True, capture_output=True)
            listen += " ssl http2" if http2 else " ssl"
            tls_conf = (f"    ssl_certificate {self.dir}/cert.pem;\n"
                        f"    ssl_certificate_key {self.dir}/key.pem;\n")
        www = os.path.join(self.dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("<html>vigil e2e</html>\n")
        with open(os.path.join(www, "chunked.txt"), "w") as f:
            f.write("compressible line of text for the chunked response\n" * 400)
        t = self.dir
        conf = os.path.join(t, "nginx.conf")
        with open(conf, "w") as f:
            f.write(nginx_prelude(t) + f"""  access_log off;
  sendfile on;
  keepalive_requests 10000;
  gzip on;
  gzip_types text/plain;
  gzip_min_length 0;
  server {{
    listen {listen};
{tls_conf}    root {www};
    location /api/ {{ default_type application/json; return 200 '{{"ok":true}}\\n'; }}
    location /err/ {{ return 503; }}
  }}
}}
""")
        self.proc = Process(["/usr/sbin/nginx", "-c", conf, "-p", t], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

        if not wait_until(lambda: listening("127.0.0.1", self.port), 10):
            self.stop()
            raise RuntimeError(f"nginx did not start on 127.0.0.1:{self.port}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        self.proc.stop(signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class TestCA:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate."""

    def __init__(self, d, name):
        self.d, self.name = d, name
        self.ca, self.ca_key = f"{d}/{name}-ca.pem", f"{d}/{name}-ca.key"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                "-subj", f"/CN=vigil test {name} CA", "-keyout", self.ca_key, "-out", self.ca)

    def issue(self, who, san=None):
        key, csr, cert, ext = (f"{self.d}/{self.name}-{who}.{x}" for x in ("key", "csr", "pem", "ext"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={who}",
                "-keyout", key, "-out", csr)
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\n" if san else "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial", "-days", "1",
                "-extfile", ext, "-out", cert)
        return cert, key


CURL = "/usr/bin/curl"
PY = "/usr/bin/python3"


class AgentCase(unittest.TestCase):
    """One vigild for a whole test class; every test needs root."""

    @classmethod
    def setUpClass(cls):
        cls.agent = None
        if os.geteuid() != 0:
            return
        cls.agent = Agent().start()

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            cls.agent.cleanup()

    def setUp(self):
        require_root(self)

    def calls(self, path_prefix):
        return [e for e in self.agent.events()
                if e["kind"] == "api_call" and e["request"]["path"].startswith(path_prefix)]


class AgentAndNginx(AgentCase):
    """vigild started first, then one nginx (TLS when NGINX_TLS), for a whole test class."""
    NGINX_TLS = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.nginx = None
        if cls.agent:
            cls.nginx = Nginx(tls=cls.NGINX_TLS)

    @classmethod
    def tearDownClass(cls):
        if cls.nginx:
            cls.nginx.stop()
        super().tearDownClass()
