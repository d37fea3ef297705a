"""E2E (issue 11): /metrics, /healthz and /readyz. The page passes `promtool check
metrics`; a real prometheus started by the test (its own config and storage)
scrapes vigild every second, and its HTTP API shows a counter the test moved."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from vigil_e2e import Agent, Process, free_port, listening, require_root, wait_until
from test_sinks import make_traffic

PROMETHEUS, PROMTOOL = "/usr/bin/prometheus", "/usr/bin/promtool"


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def sample(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return None


class Metrics(unittest.TestCase):
    def setUp(self):
        require_root(self)
        for tool in (PROMETHEUS, PROMTOOL):
            if not os.path.exists(tool):
                self.fail(f"{tool} is not installed (scripts/install-deps.sh installs prometheus)")
        self.port = free_port()
        self.agent = Agent(extra_config=f"metrics:\n  listen: 127.0.0.1:{self.port}\n")
        self.addCleanup(self.agent.cleanup)
        self.agent.start()
        self.base = f"http://127.0.0.1:{self.port}"

    def test_health_readiness_and_a_page_promtool_accepts(self):
        self.assertEqual(get(self.base + "/healthz")[0], 200)
        self.assertEqual(get(self.base + "/readyz")[:1], (200,))
        self.assertEqual(get(self.base + "/nope")[0], 404)
        make_traffic(5, free_port())
        self.assertTrue(wait_until(lambda: (sample(get(self.base + "/metrics")[2], "vigil_events_total",
                                                   kind="connection") or 0) >= 10, 10))
        status, ctype, text = get(self.base + "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "", "no lint findings")
        for name in ("vigil_sink_queue_depth", "vigil_sink_delivered_total", "vigil_sink_dropped_total",
                     "vigil_sink_oldest_unacked_seconds", "vigil_sink_queue_capacity_bytes", "vigil_lost_events_total",
                     "vigil_programs_attached", "vigil_apimap_endpoints", "vigil_ringbuf_lost_total"):
            self.assertIn(f"# TYPE {name} ", text)
        self.assertEqual(sample(text, "vigil_sink_queue_capacity_bytes", sink="file"), 16 << 20)

    def test_a_real_prometheus_scrapes_and_sees_a_counter_move(self):
        d = tempfile.mkdtemp(prefix="vigil-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        web = free_port()
        with open(f"{d}/prometheus.yml", "w") as f:
            f.write(f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
                    f"scrape_configs:\n  - job_name: vigil\n    static_configs: [{{targets: ['127.0.0.1:{self.port}']}}]\n")
        with open(f"{d}/stderr", "w") as err:
            prom = Process([PROMETHEUS, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
                            f"--web.listen-address=127.0.0.1:{web}"], stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(prom.stop)
        self.assertTrue(wait_until(lambda: listening("127.0.0.1", web), 30), pathlib.Path(d, "stderr").read_text()[-800:])

        def query(q):
            status, _, body = get(f"http://127.0.0.1:{web}/api/v1/query?query={urllib.parse.quote(q)}")
            res = json.loads(body)["data"]["result"] if status == 200 else []
            return float(res[0]["value"][1]) if res else None

        self.assertTrue(wait_until(lambda: query('up{job="vigil"}') == 1, 30), "prometheus scraped vigild")
        before = wait_until(lambda: query('vigil_events_total{kind="connection"}'), 20) or 0
        make_traffic(20, free_port())
        self.assertTrue(wait_until(lambda: (query('vigil_events_total{kind="connection"}') or 0) >= before + 40, 30),
                        (before, query('vigil_events_total{kind="connection"}')))
        self.assertEqual(query('vigil_sink_up{sink="file"}'), 1)


if __name__ == "__main__":
    unittest.main()
