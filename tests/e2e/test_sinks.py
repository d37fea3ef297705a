"""E2E (issue 11): event sinks against real peers. A real rsyslogd (imudp, imtcp,
imuxsock), started by the test with its own config, receives vigild's RFC 5424
messages over UDP, TCP (octet counting) and a unix socket (and syslog(3)'s format on a
socket parsed as a stock rsyslog parses /dev/log); every event of the
file sink arrives with the right PRI, MSGID, structured data and JSON. An outage
of the TCP receiver across a SIGKILL of vigild loses nothing: the spool replays,
in order, with no gap in seq per boot_id."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest

from vigil_e2e import Agent, Process, TestCA, free_port, listening, require_root, wait_until

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}


class Rsyslog:
    """rsyslogd in the foreground with a private config: one line per message in out.log."""

    def __init__(self, udp_port=None, tcp_port=None, tls=None):
        """tls: (CA file, certificate, key) for an RFC 5425 input (gtls, x509/certvalid: clients need a
        certificate from the CA) on self.tls_port."""
        self.dir = tempfile.mkdtemp(prefix="vigil-rsyslog-")
        self.tls = tls
        self.tls_port = free_port()
        self.udp_port = udp_port or free_port()
        self.tcp_port = tcp_port or free_port()
        self.sock = os.path.join(self.dir, "log.sock")
        self.out = os.path.join(self.dir, "out.log")
        # A socket parsed as Debian's stock rsyslog parses /dev/log (imuxsock's defaults:
        # the special parser for syslog(3)'s format, the host name not parsed).
        self.stock_sock = os.path.join(self.dir, "stock.sock")
        self.stock_out = os.path.join(self.dir, "stock.log")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        self.proc = None

    def start(self):
        tls_global = tls_input = ""
        if self.tls:
            ca, cert, key = self.tls
            tls_global = (f' DefaultNetstreamDriverCAFile="{ca}" DefaultNetstreamDriverCertFile="{cert}"'
                          f' DefaultNetstreamDriverKeyFile="{key}"')
            tls_input = (f'input(type="imtcp" address="127.0.0.1" port="{self.tls_port}" streamDriver.name="gtls"'
                         f' streamDriver.mode="1" streamDriver.authMode="x509/certvalid")')
        with open(self.conf, "w") as f:
            f.write(textwrap.dedent(f"""\
                global(workDirectory="{self.dir}" maxMessageSize="64k"{tls_global})
                module(load="imudp")
                input(type="imudp" address="127.0.0.1" port="{self.udp_port}")
                module(load="imtcp")
                input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}")
                {tls_input}
                module(load="imuxsock" SysSock.Use="off")
                input(type="imuxsock" Socket="{self.sock}" UseSpecialParser="off" ParseHostname="on" IgnoreTimestamp="off")
                input(type="imuxsock" Socket="{self.stock_sock}" Ruleset="stock")
                template(name="fields" type="list") {{
                  property(name="inputname") constant(value="|")
                  property(name="pri") constant(value="|")
                  property(name="timereported" dateFormat="rfc3339") constant(value="|")
                  property(name="hostname") constant(value="|")
                  property(name="app-name") constant(value="|")
                  property(name="procid") constant(value="|")
                  property(name="msgid") constant(value="|")
                  property(name="structured-data") constant(value="|")
                  property(name="msg" droplastlf="on") constant(value="\\n")
                }}
                *.* action(type="omfile" file="{self.out}" template="fields")
                ruleset(name="stock") {{
                  action(type="omfile" file="{self.stock_out}" template="fields")
                }}
                """))
        with open(os.path.join(self.dir, "stderr"), "w") as err:
            self.proc = Process([RSYSLOGD, "-n", "-f", self.conf, "-i", os.path.join(self.dir, "pid")],
                                stdout=subprocess.DEVNULL, stderr=err)
        if not wait_until(lambda: listening("127.0.0.1", self.tcp_port) and os.path.exists(self.sock)
                          and (not self.tls or listening("127.0.0.1", self.tls_port)), 15):
            raise RuntimeError("rsyslogd did not start: " + open(os.path.join(self.dir, "stderr")).read())
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()

    def messages(self, stock=False):
        """{(input, seq, boot_id): fields} of every message received so far (stock: on stock_sock)."""
        out = {}
        try:
            with open(self.stock_out if stock else self.out) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            parts = line.split("|", 8)
            if len(parts) < 9:
                continue
            try:
                ev = json.loads(parts[8].strip())
            except ValueError:
                continue
            keys = ["input", "pri", "time", "host", "app", "procid", "msgid", "sd", "json"]
            rec = dict(zip(keys, parts[:8] + [ev]))
            out[(parts[0], ev["seq"], ev.get("boot_id"))] = rec
        return out

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def make_traffic(n, port):
    """n short TCP connections to a loopback listener: connection events."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", port))
        srv.listen(64)
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", port))
            a, _ = srv.accept()
            c.close()
            a.close()


class SyslogSink(unittest.TestCase):
    def setUp(self):
        require_root(self)
        if not os.path.exists(RSYSLOGD):
            self.fail("rsyslogd is not installed (scripts/install-deps.sh installs rsyslog)")

    def test_every_event_arrives_over_udp_tcp_and_unix_with_rfc5424_fields(self):
        rs = Rsyslog().start()
        self.addCleanup(rs.cleanup)
        items = textwrap.dedent(f"""\
            - type: syslog
              name: udp
              address: udp://127.0.0.1:{rs.udp_port}
              facility: local0
            - type: syslog
              name: tcp
              address: tcp://127.0.0.1:{rs.tcp_port}
              facility: local0
            - type: syslog
              name: unix
              address: unix://{rs.sock}
              format: rfc5424
              facility: local0
              app_name: vigil-test
            - type: syslog
              name: local
              address: unix://{rs.stock_sock}
              facility: local0
            """)
        agent = Agent(extra_config=textwrap.indent(items, "    "))  # more items under events.sinks
        self.addCleanup(agent.cleanup)
        agent.start()
        make_traffic(20, free_port())
        file_events = wait_until(lambda: [e for e in agent.events() if e["kind"] == "connection"]
                                 if len([e for e in agent.events() if e["kind"] == "connection"]) >= 40 else None, 20)
        self.assertTrue(file_events, "connection events in the file sink")
        boot = file_events[0]["boot_id"]
        self.assertRegex(boot, r"^[0-9a-f-]{16,}$")

        def arrived():
            got = rs.messages()
            return all((inp, e["seq"], boot) in got for e in file_events for inp in ("imudp", "imtcp", "imuxsock"))
        self.assertTrue(wait_until(arrived, 20), "every event on every transport")
        # The default on a unix socket is syslog(3)'s format, which a stock rsyslog (and journald)
        # parses: the program name is vigil, the message the event's JSON.
        self.assertTrue(wait_until(lambda: all((("imuxsock", e["seq"], boot) in rs.messages(stock=True))
                                                for e in file_events), 20), "every event on the stock socket")
        stock = rs.messages(stock=True)
        for e in file_events:
            m = stock[("imuxsock", e["seq"], boot)]
            self.assertEqual(m["json"], e)
            self.assertEqual(int(m["pri"]), 16 * 8 + SEVERITY["info"])
            self.assertEqual((m["app"], m["procid"]), ("vigil", str(agent.proc.pid)))
        got = rs.messages()
        hostname = file_events[0]["node"]
        for e in file_events:
            for inp in ("imudp", "imtcp", "imuxsock"):
                m = got[(inp, e["seq"], boot)]
                self.assertEqual(m["json"], e, "the message is the event's JSON line (the file adds only its chain)")
                self.assertEqual(int(m["pri"]), 16 * 8 + SEVERITY["info"])
                self.assertEqual(m["msgid"], "connection")
                self.assertEqual(m["host"], hostname)
                self.assertEqual(m["app"], "vigil-test" if inp == "imuxsock" else "vigil")
                self.assertEqual(m["procid"], str(agent.proc.pid))
                self.assertEqual(m["sd"], f'[vigil@32473 kind="connection" severity="info" seq="{e["seq"]}"]')
                self.assertTrue(m["time"].startswith(e["time"][:26]), (m["time"], e["time"]))
        st = agent.status()
        sinks = {s["name"]: s for s in st["sinks"]}
        for name in ("udp", "tcp", "unix", "local"):
            self.assertTrue(sinks[name]["spooled"])
            self.assertGreaterEqual(sinks[name]["delivered"], len(file_events))
            self.assertEqual(sum(sinks[name]["dropped"].values()), 0)
        self.assertTrue(os.path.isdir(os.path.join(agent.dir, "data", "spool", "tcp")))

    def test_tls_with_a_client_certificate_rfc5425(self):
        d = tempfile.mkdtemp(prefix="vigil-syslog-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        ca = TestCA(d, "syslog")
        server = ca.issue("rsyslog", "IP:127.0.0.1")
        client = ca.issue("vigil-agent")
        rs = Rsyslog(tls=(ca.ca, *server)).start()
        self.addCleanup(rs.cleanup)
        agent = Agent(extra_config=textwrap.indent(textwrap.dedent(f"""\
            - type: syslog
              name: tls
              address: tls://127.0.0.1:{rs.tls_port}
              ca: {ca.ca}
              client_cert: {client[0]}
              client_key: {client[1]}
              kinds: [connection]
            """), "    "))
        self.addCleanup(agent.cleanup)
        agent.start()
        make_traffic(10, free_port())
        want = wait_until(lambda: [e for e in agent.events() if e["kind"] == "connection"]
                          if len([e for e in agent.events() if e["kind"] == "connection"]) >= 20 else None, 20)
        self.assertTrue(want)
        self.assertTrue(wait_until(lambda: all(("imtcp", e["seq"], e["boot_id"]) in rs.messages() for e in want), 20),
                        (agent.status()["sinks"], pathlib.Path(rs.dir, "stderr").read_text()[-500:]))
        got = rs.messages()
        for e in want:
            self.assertEqual(got[("imtcp", e["seq"], e["boot_id"])]["json"], e)
        st = next(s for s in agent.status()["sinks"] if s["name"] == "tls")
        self.assertEqual(st["last_error"], "")

    def test_a_receiver_outage_across_a_sigkill_loses_nothing(self):
        rs = Rsyslog()  # not started: the receiver is down
        self.addCleanup(rs.cleanup)
        agent = Agent(extra_config=textwrap.indent(textwrap.dedent(f"""\
            - type: syslog
              name: tcp
              address: tcp://127.0.0.1:{rs.tcp_port}
              kinds: [connection]
              fsync_interval_ms: 100
            """), "    "))
        self.addCleanup(agent.cleanup)
        agent.start()
        make_traffic(30, free_port())
        first = wait_until(lambda: [e for e in agent.events() if e["kind"] == "connection"]
                           if len([e for e in agent.events() if e["kind"] == "connection"]) >= 60 else None, 20)
        self.assertTrue(first)
        self.assertTrue(wait_until(lambda: next(s for s in agent.status()["sinks"] if s["name"] == "tcp")
                                   ["spool_records"] >= len(first), 10), agent.status()["sinks"])
        time.sleep(0.3)  # past the fsync interval
        agent.stop(signal.SIGKILL)
        agent.restart()
        make_traffic(10, free_port())
        second = wait_until(lambda: [e for e in agent.events() if e["kind"] == "connection"
                                     and e["boot_id"] != first[0]["boot_id"]]
                            if len([e for e in agent.events() if e["kind"] == "connection"
                                    and e["boot_id"] != first[0]["boot_id"]]) >= 20 else None, 20)
        self.assertTrue(second)
        rs.start()  # the receiver comes back
        want = [("imtcp", e["seq"], e["boot_id"]) for e in first + second]
        self.assertTrue(wait_until(lambda: all(k in rs.messages() for k in want), 30),
                        f"{sum(k in rs.messages() for k in want)} of {len(want)} arrived")
        # In order per boot_id, and no gap in seq among the connection events of each run.
        got = rs.messages()
        with open(rs.out) as f:
            order = [json.loads(line.split("|", 8)[8]) for line in f if line.count("|") >= 8]
        for boot in {first[0]["boot_id"], second[0]["boot_id"]}:
            seqs = [e["seq"] for e in order if e.get("boot_id") == boot]
            dedup = [s for i, s in enumerate(seqs) if s not in seqs[:i]]  # at least once: repeats allowed
            self.assertEqual(dedup, sorted(dedup), "in order")
            expected = [e["seq"] for e in first + second if e["boot_id"] == boot]
            self.assertEqual([s for s in dedup if s in set(expected)], expected)
        self.assertTrue(all(k in got for k in want))



class AuditChain(unittest.TestCase):
    """The file sink's hash chain across rotations and a restart, and `vigil audit verify`
    naming each kind of tampering."""

    def setUp(self):
        require_root(self)

    def verify(self, *files):
        from vigil_e2e import VIGIL
        return subprocess.run([VIGIL, "audit", "verify", *files], capture_output=True, text=True, timeout=60)

    def test_verify_holds_across_rotations_and_a_restart_and_names_tampering(self):
        agent = Agent()
        self.addCleanup(agent.cleanup)
        audit_dir = os.path.join(agent.dir, "audit")
        path = os.path.join(audit_dir, "events.jsonl")
        key = os.path.join(agent.dir, "signing.key")
        from vigil_e2e import VIGIL
        r = subprocess.run([VIGIL, "audit", "keygen", "--out", key], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        with open(agent.config, "a") as f:
            f.write(textwrap.indent(textwrap.dedent(f"""\
                - type: file
                  name: audit
                  path: {path}
                  max_size_mb: 1
                  max_files: 10
                """), "    "))
            f.write(f"audit:\n  signing_key: {key}\n  checkpoint_interval: 1s\n")
        agent.start()
        make_traffic(1500, free_port())
        self.assertTrue(wait_until(lambda: os.path.exists(path + ".2"), 60), "two rotations")
        agent.stop()
        agent.restart()  # an epoch record continues the chain
        make_traffic(1200, free_port())
        self.assertTrue(wait_until(lambda: os.path.exists(path + ".3"), 60), "three rotations")
        agent.stop()
        r = self.verify(path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("chain intact", r.stdout)
        self.assertRegex(r.stdout, r"2 agent starts")
        mode = os.stat(path).st_mode & 0o777
        self.assertEqual(mode, 0o600)

        def copy_edited(edit):
            work = tempfile.mkdtemp(prefix="vigil-tamper-")
            self.addCleanup(shutil.rmtree, work, True)
            for name in os.listdir(audit_dir):
                shutil.copy(os.path.join(audit_dir, name), work)
            live = os.path.join(work, "events.jsonl")
            edit(live)
            return work, live

        def tampered(edit, expect):
            work, live = copy_edited(edit)
            r = self.verify(live)
            self.assertEqual(r.returncode, 1, f"{expect}: {r.stdout}{r.stderr}")
            self.assertRegex(r.stdout, expect)

        def lines_of(p):
            with open(p) as f:
                return f.read().splitlines(keepends=True)

        def rewrite(p, ls):
            with open(p, "w") as f:
                f.writelines(ls)

        def edit_byte(p):
            ls = lines_of(p)
            ls[5] = ls[5].replace('"kind":"connection"', '"kind":"connectioN"', 1)
            rewrite(p, ls)

        def delete_line(p):
            ls = lines_of(p)
            del ls[7]
            rewrite(p, ls)

        def insert_line(p):
            ls = lines_of(p)
            ls.insert(4, '{"v":1,"kind":"connection","seq":1}\n')
            rewrite(p, ls)

        def swap_lines(p):
            ls = lines_of(p)
            ls[9], ls[10] = ls[10], ls[9]
            rewrite(p, ls)

        def delete_rotated(p):
            os.unlink(p + ".2")

        tampered(edit_byte, r"events\.jsonl:6: modified")
        tampered(delete_line, r"events\.jsonl:8: deleted")
        tampered(insert_line, r"events\.jsonl:5: not chained")
        tampered(swap_lines, r"events\.jsonl:10: reordered")
        tampered(delete_rotated, r"events\.jsonl\.1 does not continue .*events\.jsonl\.3: a rotated file is missing")

        # Signed checkpoints (every second, at each rotation, at exit) catch what the chain cannot.
        checkpoints = os.path.join(agent.dir, "data", "checkpoints", "audit.jsonl")
        self.assertTrue(os.path.exists(checkpoints))
        r = self.verify(path, "--key", key + ".pub", "--checkpoint", checkpoints)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"note: \d+ checkpoints checked")
        with open(agent.events_path) as f:
            self.assertIn('"kind":"checkpoint"', f.read(), "checkpoints also go to the other sinks")

        def truncate_tail(p):
            ls = lines_of(p)
            rewrite(p, ls[:-20])

        def delete_live(p):
            os.unlink(p)

        for edit in (truncate_tail, delete_live):
            work, live = copy_edited(edit)
            files = sorted((os.path.join(work, n) for n in os.listdir(work)),
                           key=lambda p: -int(p.rsplit(".", 1)[1]) if p[-1].isdigit() else 0)  # oldest first
            r = self.verify(*files, "--key", key + ".pub", "--checkpoint", checkpoints)
            self.assertEqual(r.returncode, 1, f"{edit.__name__}: {r.stdout}{r.stderr}")
            self.assertIn("truncated: the checkpoint of", r.stdout)

    def test_zstd_rotated_files_are_valid_verify_and_are_queried(self):
        """compress: zstd: rotated files become events.jsonl.N.zst, which the real zstd tool accepts;
        the chain verifies through them, and `vigil events` reads them with the live file."""
        zstd = shutil.which("zstd")
        if not zstd:
            self.fail("zstd is not installed (scripts/install-deps.sh installs it)")
        agent = Agent()
        self.addCleanup(agent.cleanup)
        audit_dir = os.path.join(agent.dir, "zaudit")
        path = os.path.join(audit_dir, "events.jsonl")
        with open(agent.config, "a") as f:
            f.write(textwrap.indent(textwrap.dedent(f"""\
                - type: file
                  name: zaudit
                  path: {path}
                  max_size_mb: 1
                  max_files: 5
                  compress: zstd
                """), "    "))
        agent.start()
        make_traffic(1500, free_port())
        self.assertTrue(wait_until(lambda: os.path.exists(path + ".2.zst"), 60), os.listdir(audit_dir))
        agent.stop()
        names = sorted(os.listdir(audit_dir))
        self.assertNotIn("events.jsonl.1", names, "the plain copy goes once compressed")
        rotated = [os.path.join(audit_dir, n) for n in names if n.endswith(".zst")]
        for z in rotated:
            r = subprocess.run([zstd, "-t", "-q", z], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"zstd -t {z}: {r.stderr}")
            self.assertEqual(os.stat(z).st_mode & 0o777, 0o600)
        self.assertLess(sum(os.path.getsize(z) for z in rotated), len(rotated) * (1 << 20) // 3,
                        "JSON lines compress well")
        r = self.verify(path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("chain intact", r.stdout)
        # What the files hold, by zstd -dc and plain reads, is what vigil events shows.
        expect = 0
        for p in rotated + [path]:
            text = subprocess.run([zstd, "-dc", p], capture_output=True, text=True, check=True).stdout \
                if p.endswith(".zst") else pathlib.Path(p).read_text()
            expect += sum(1 for l in text.splitlines() if '"kind":"connection"' in l)
        from vigil_e2e import VIGIL
        r = subprocess.run([VIGIL, "events", "--kind", "connection", "-o", "json", *rotated, path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreater(expect, 1000)
        self.assertEqual(len(r.stdout.splitlines()), expect)


if __name__ == "__main__":
    unittest.main()
