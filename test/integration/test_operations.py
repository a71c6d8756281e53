"""Running the daemons as an operator does: log formats and levels, SIGHUP, and what
`meson install` puts on a machine (binaries, hardened systemd units, example configs, docs),
with the installed binaries started on the installed configs."""

import re
import shutil

from harness import *  # noqa: F403
from harness import BUILD_DIR

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def json_lines(text):
    """Every line of `text` parsed as one JSON object (a line that is not one fails)."""
    return [json.loads(line) for line in text.splitlines() if line]


class LogFormatTest(unittest.TestCase):
    def test_json_lines_carry_ts_level_msg_and_the_request_fields(self):
        with Server("--log-format=json", "--log-level=info") as s:
            self.assertEqual(s.request("POST", "/update/gauge/a%22b/1.5")[0], 200)
            s.stop()
            lines = json_lines(s.stderr_text())
        for line in lines:
            self.assertEqual(list(line)[:3], ["ts", "level", "msg"])
            self.assertRegex(line["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        requests = [line for line in lines if line["msg"] == "request"]
        self.assertEqual(len(requests), 1)
        self.assertEqual(requests[0]["level"], "info")
        self.assertEqual(requests[0]["method"], "POST")
        self.assertEqual(requests[0]["target"], "/update/gauge/a%22b/1.5")
        self.assertEqual(requests[0]["status"], 200)
        self.assertEqual(requests[0]["peer"], "127.0.0.1")
        self.assertIsInstance(requests[0]["duration_us"], int)
        self.assertTrue(any(line["msg"].startswith("metrics-server ") for line in lines))

    def test_log_level_variable_beats_flag_and_flag_beats_metrics_log_level(self):
        with Server("--log-level=info", env={"METRICS_LOG_LEVEL": "error"}) as s:
            self.assertEqual(s.request("GET", "/ping")[0], 200)
            s.stop()
            self.assertIn(" info  GET /ping 200", s.stderr_text().replace("127.0.0.1 ", ""))
        with Server("--log-level=info", env={"LOG_LEVEL": "warn"}) as s:
            self.assertEqual(s.request("GET", "/ping")[0], 200)
            s.stop()
            self.assertNotIn(" info ", s.stderr_text())

    def test_a_bad_format_or_level_is_a_usage_error(self):
        for args in (["--log-format=xml"], ["--log-level=verbose"]):
            for binary in (SERVER_BIN, AGENT_BIN):
                r = subprocess.run([binary, *args], env=clean_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=10, check=False)
                self.assertEqual(r.returncode, 2, (binary, args))
                self.assertEqual(len(r.stderr.decode().splitlines()), 1)
                self.assertIn("not one of", r.stderr.decode())

    def test_the_agent_logs_json_too(self):
        with Server() as s:
            agent = Agent(s.port, "-p", "0.2", "-r", "0.4", "--log-format=json", env={"METRICS_LOG_LEVEL": "info"})
            try:
                self.assertTrue(wait_until(lambda: (counter(s, "PollCount") or 0) > 0))
            finally:
                agent.close()
            lines = json_lines(agent.child.stderr_text())
            self.assertTrue(lines)
            self.assertTrue(all({"ts", "level", "msg"} <= set(line) for line in lines))


class HangupTest(unittest.TestCase):
    def test_sighup_without_an_audit_file_keeps_serving(self):
        with Server(env={"METRICS_LOG_LEVEL": "info"}) as s:
            self.assertEqual(s.request("POST", "/update/counter/c/2")[0], 200)
            s.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "nothing to reopen" in s.stderr_text()))
            self.assertIsNone(s.proc.poll())
            self.assertEqual(s.value("counter", "c"), (200, "2"))


def samples(text):
    """{sample name with labels: value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


class SelfMetricsTest(unittest.TestCase):
    """/metrics carries the daemon's own figures after the stored metrics."""

    def scrape(self, s, accept=None):
        status, headers, body = s.request("GET", "/metrics", headers={"Accept": accept} if accept else {})
        self.assertEqual(status, 200)
        return headers["content-type"], body.decode()

    def test_process_build_and_http_figures(self):
        with Server() as s:
            for _ in range(3):
                self.assertEqual(s.request("POST", "/update/counter/c/1")[0], 200)
            self.assertEqual(s.request("GET", "/value/gauge/missing")[0], 404)
            batch = json.dumps([{"id": "g%d" % i, "type": "gauge", "value": i} for i in range(5)])
            self.assertEqual(s.request("POST", "/updates/", batch, {"Content-Type": "application/json"})[0], 200)
            # A request line over the limit never reaches a route: a rejection, not a request.
            self.assertIn(b" 414 ", raw_exchange(s.port, b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n"))
            kind, text = self.scrape(s)
        self.assertEqual(kind, "text/plain; version=0.0.4; charset=utf-8")
        got = samples(text)
        self.assertEqual(got['metrics_server_http_requests_total{endpoint="/update/{kind}/{name}/{value}",code="200"}'], 3)
        self.assertEqual(got['metrics_server_http_requests_total{endpoint="/value/{kind}/{name}",code="404"}'], 1)
        self.assertEqual(got['metrics_server_http_requests_total{endpoint="/updates/",code="200"}'], 1)
        self.assertEqual(got['metrics_server_http_request_duration_seconds_count{endpoint="/update/{kind}/{name}/{value}"}'], 3)
        self.assertEqual(got['metrics_server_http_request_duration_seconds_bucket{endpoint="/update/{kind}/{name}/{value}",le="+Inf"}'], 3)
        self.assertEqual(got["metrics_server_updates_applied_total"], 8)
        self.assertEqual(got['metrics_server_http_rejections_total{limit="uri",code="414"}'], 1)
        self.assertEqual(got['metrics_server_stored_metrics{kind="counter"}'], 1)
        self.assertEqual(got['metrics_server_stored_metrics{kind="gauge"}'], 5)
        # The harness's daemon keeps a snapshot file: its write-ahead log took one record per change.
        self.assertEqual(got["metrics_server_wal_records_total"], 4)
        self.assertEqual(got["metrics_server_wal_write_failures_total"], 0)
        self.assertEqual(got["metrics_server_wal_healthy"], 1)
        self.assertGreater(got["metrics_server_wal_bytes"], 0)
        self.assertGreaterEqual(got["metrics_server_connections_total"], 6)
        self.assertEqual(got['metrics_server_build_info{version="0.1.0"}'], 1)
        self.assertGreater(got["process_resident_memory_bytes"], 1e6)
        self.assertGreater(got["process_start_time_seconds"], time.time() - 600)
        self.assertLessEqual(got["process_start_time_seconds"], time.time() + 1)
        self.assertGreater(got["process_open_fds"], 3)
        for family in ("process_cpu_seconds_total", "process_virtual_memory_bytes", "process_max_fds"):
            self.assertIn("# TYPE %s " % family, text)

    def test_openmetrics_when_the_scraper_prefers_it(self):
        with Server() as s:
            self.assertEqual(s.request("POST", "/update/counter/hits/2")[0], 200)
            self.assertEqual(s.request("POST", "/update/gauge/hits/1.5")[0], 200)
            prometheus_accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                                 "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
            kind, text = self.scrape(s, prometheus_accept)
            plain_kind, _ = self.scrape(s, "text/plain;q=0.9,application/openmetrics-text;q=0.5")
        self.assertEqual(kind, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        self.assertEqual(plain_kind, "text/plain; version=0.0.4; charset=utf-8")
        self.assertTrue(text.endswith("# EOF\n"))
        self.assertIn("# TYPE hits counter\nhits_total 2\n", text)
        self.assertIn('# TYPE hits_value gauge\nhits_value{id="hits"} 1.5\n', text)
        self.assertIn("# TYPE process_cpu_seconds counter\n", text)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian package prometheus) is not installed")
    def test_promtool_accepts_the_exposition_with_names_that_need_sanitising(self):
        # promtool reads the Prometheus text format only (it would take OpenMetrics' counter
        # HELP lines, named without _total, as missing); the OpenMetrics form is checked by
        # exposition_test.cpp's parser and test_openmetrics_when_the_scraper_prefers_it.
        names = [("gauge", "my.metric"), ("counter", "9lives"), ("gauge", "x_total"), ("counter", "x"),
                 ("gauge", "process_cpu_seconds_total"), ("counter", "metrics_server_updates_applied"),
                 ("gauge", "caf%C3%A9"), ("gauge", "q%22%5C")]
        with Server() as s:
            for kind, name in names:
                self.assertEqual(s.request("POST", "/update/%s/%s/3" % (kind, name))[0], 200, name)
            texts = [self.scrape(s)[1]]
        for text in texts:
            r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode() + text)


class HealthTest(unittest.TestCase):
    def test_healthy_and_ready(self):
        with Server() as s:
            self.assertEqual(s.request("GET", "/-/healthy")[:1], (200,))
            self.assertEqual(s.request("GET", "/-/ready")[0], 200)
            self.assertEqual(s.request("HEAD", "/-/healthy")[0], 200)
            status, headers, _ = s.request("POST", "/-/ready")
            self.assertEqual((status, headers["allow"]), (405, "GET, HEAD"))


@unittest.skipUnless(shutil.which("meson"), "meson is not installed")
class InstallTest(unittest.TestCase):
    """`meson install` into a staging directory, as a package build does."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dest = cls.tmp.name
        r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--destdir", cls.dest, "--no-rebuild", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
        if r.returncode != 0:
            raise AssertionError("meson install failed:\n" + r.stdout.decode(errors="replace"))
        out = subprocess.run(["meson", "introspect", "--buildoptions", BUILD_DIR], stdout=subprocess.PIPE,
                             check=True).stdout
        options = {o["name"]: o["value"] for o in json.loads(out)}
        cls.prefix = options["prefix"]
        cls.bindir = os.path.join(cls.prefix, options["bindir"])
        cls.confdir = os.path.join(cls.prefix, options["sysconfdir"], "metrics")
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def root(self, path):
        """Where an installed path lies in the staging directory."""
        return os.path.join(self.dest, path.lstrip("/"))

    def unit(self, daemon):
        with open(self.root(os.path.join(self.unitdir, daemon + ".service"))) as f:
            return f.read()

    def test_binaries_configs_units_and_docs_are_installed(self):
        for name in ("metrics-server", "metrics-agent", "metrics-keygen"):
            self.assertTrue(os.access(self.root(os.path.join(self.bindir, name)), os.X_OK), name)
        for name in ("metrics-server.json", "metrics-agent.json"):
            with open(self.root(os.path.join(self.confdir, name))) as f:
                json.load(f)
        docdir = os.path.join(self.prefix, "share", "doc", "metrics")
        for name in ("README.md", "API.md", "OPERATIONS.md", "CONFIGURATION.md"):
            self.assertTrue(os.path.isfile(self.root(os.path.join(docdir, name))), name)

    def test_units_start_the_installed_binaries_hardened(self):
        for daemon in ("metrics-server", "metrics-agent"):
            text = self.unit(daemon)
            self.assertIn("ExecStart=%s/%s -c %s/%s.json\n" % (self.bindir, daemon, self.confdir, daemon), text)
            for line in ("DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                         "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
                self.assertIn(line + "\n", text, daemon)
        server = self.unit("metrics-server")
        self.assertIn("StateDirectory=metrics\n", server)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID\n", server)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_systemd_rates_both_units_ok(self):
        for daemon in ("metrics-server", "metrics-agent"):
            path = self.root(os.path.join(self.unitdir, daemon + ".service"))
            r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
            text = r.stdout.decode(errors="replace")
            self.assertNotIn("Unknown key", text)
            self.assertNotIn("Unknown section", text)
            level = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", text)
            self.assertIsNotNone(level, text)
            self.assertLessEqual(float(level.group(1)), 2.0, text)

    def test_the_installed_daemons_run_on_the_installed_configs(self):
        server_bin = self.root(os.path.join(self.bindir, "metrics-server"))
        agent_bin = self.root(os.path.join(self.bindir, "metrics-agent"))
        port = free_port()
        with tempfile.TemporaryDirectory() as state:
            # The example's paths are the service's (/var/lib/metrics); flags beat the file.
            server = Child("installed-server", [server_bin, "-c", self.root(os.path.join(self.confdir, "metrics-server.json")),
                                                "-a", "127.0.0.1:%d" % port, "-f", os.path.join(state, "db.json")],
                           clean_env())
            try:
                wait_for_port(port, server.proc)
                agent = Child("installed-agent", [agent_bin, "-c", self.root(os.path.join(self.confdir, "metrics-agent.json")),
                                                  "-a", "127.0.0.1:%d" % port, "-p", "0.2", "-r", "0.4"],
                              clean_env())
                try:
                    probe = Server(port=port)
                    self.assertTrue(wait_until(lambda: (counter(probe, "PollCount") or 0) > 0))
                finally:
                    agent.check()
            finally:
                server.check()
            for child in (server, agent):
                self.assertNotIn("unknown key", child.stderr_text())


if __name__ == "__main__":
    unittest.main()
