"""The metric cap (-max-metrics) with the real binary, on every storage: memory only (-f ""),
durable (snapshot file and write-ahead log) and PostgreSQL (a scratch database; skipped without
METRICS_TEST_DSN). A new name beyond the cap is a 507 that changes nothing, stored metrics keep
updating, a refused batch stores nothing, DELETE and expiry free room, /ping stays 200, and
refusals are counted in /metrics."""

import glob
import shutil
import urllib.parse
import uuid

from harness import *  # noqa: F401,F403

DSN = os.environ.get("METRICS_TEST_DSN", "")
CAP_MESSAGE = b"metric cap reached (--max-metrics)"


def find_psql():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    return found[0] if found else shutil.which("psql")


PSQL = find_psql()


def psql(dsn, sql):
    r = subprocess.run([PSQL, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
                       capture_output=True, timeout=60, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return r.stdout.strip()


def refused_total(server):
    status, _, body = server.request("GET", "/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith("metrics_server_metrics_refused_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no metrics_server_metrics_refused_total in /metrics")


class CapacityCases:
    """The cases, run against each storage by the classes below (storage_args())."""

    def storage_args(self):
        raise NotImplementedError

    def server(self, cap, *extra):
        return Server(*self.storage_args(), "--max-metrics", str(cap), *extra)

    def update(self, s, kind, name, value):
        return s.request("POST", "/update/%s/%s/%s" % (kind, name, value))

    def assert_refused(self, answer):
        status, _, body = answer
        self.assertEqual(status, 507, body)
        self.assertIn(CAP_MESSAGE, body)

    def test_a_new_name_beyond_the_cap_is_507_and_stored_metrics_keep_updating(self):
        with self.server(3) as s:
            self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
            self.assertEqual(self.update(s, "counter", "b", 1)[0], 200)
            self.assertEqual(s.post_json("/update/", {"id": "c", "type": "gauge", "value": 1})[0], 200)
            self.assert_refused(self.update(s, "gauge", "d", 1))
            self.assert_refused(s.post_json("/update/", {"id": "d", "type": "counter", "delta": 1}))
            self.assert_refused(self.update(s, "counter", "a", 1))  # a counter named like a gauge is new
            self.assertEqual(s.value("gauge", "d")[0], 404)
            self.assertEqual(s.value("counter", "a")[0], 404)
            # At the cap: updates of stored metrics, single and batched, and /ping.
            self.assertEqual(self.update(s, "gauge", "a", 2.5)[0], 200)
            self.assertEqual(s.post_json("/update/", {"id": "b", "type": "counter", "delta": 4})[0], 200)
            status, _, body = s.post_json("/updates/", [{"id": "c", "type": "gauge", "value": 7},
                                                         {"id": "b", "type": "counter", "delta": 1}])
            self.assertEqual(status, 200, body)
            self.assertEqual(s.value("gauge", "a"), (200, "2.5"))
            self.assertEqual(s.value("counter", "b"), (200, "6"))
            self.assertEqual(s.value("gauge", "c"), (200, "7"))
            self.assertEqual(s.request("GET", "/ping")[0], 200)
            self.assertEqual(refused_total(s), 3)

    def test_a_batch_with_a_new_name_beyond_the_cap_stores_nothing(self):
        with self.server(3) as s:
            self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
            self.assertEqual(self.update(s, "counter", "b", 1)[0], 200)
            self.assert_refused(s.post_json("/updates/", [{"id": "b", "type": "counter", "delta": 5},
                                                          {"id": "a", "type": "gauge", "value": 9},
                                                          {"id": "x", "type": "gauge", "value": 1},
                                                          {"id": "y", "type": "gauge", "value": 1}]))
            self.assertEqual(s.value("counter", "b"), (200, "1"))
            self.assertEqual(s.value("gauge", "a"), (200, "1"))
            self.assertEqual(s.value("gauge", "x")[0], 404)
            self.assertEqual(s.value("gauge", "y")[0], 404)
            # One new name, repeated, fits exactly.
            status, _, body = s.post_json("/updates/", [{"id": "x", "type": "gauge", "value": 1},
                                                        {"id": "x", "type": "gauge", "value": 2},
                                                        {"id": "b", "type": "counter", "delta": 1}])
            self.assertEqual(status, 200, body)
            self.assertEqual(s.value("gauge", "x"), (200, "2"))
            self.assertEqual(s.value("counter", "b"), (200, "2"))
            self.assertEqual(refused_total(s), 1)

    def test_delete_frees_room_at_once(self):
        with self.server(2) as s:
            self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
            self.assertEqual(self.update(s, "gauge", "b", 1)[0], 200)
            self.assert_refused(self.update(s, "gauge", "c", 1))
            self.assertEqual(s.request("DELETE", "/value/gauge/a")[0], 200)
            self.assertEqual(self.update(s, "gauge", "c", 1)[0], 200)
            self.assert_refused(self.update(s, "gauge", "a", 1))

    def test_expiry_frees_room(self):
        with self.server(2, "--metric-ttl", "1s") as s:
            self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
            self.assertEqual(self.update(s, "gauge", "b", 1)[0], 200)
            self.assert_refused(self.update(s, "gauge", "c", 1))
            # Once the sweep has removed the expired two, a new name fits.
            self.assertTrue(wait_until(lambda: self.update(s, "gauge", "c", 1)[0] == 200, timeout=20, step=0.2))
            self.assertEqual(s.value("gauge", "c"), (200, "1"))
            self.assertEqual(s.request("GET", "/ping")[0], 200)


class MemoryOnly(CapacityCases, unittest.TestCase):
    def storage_args(self):
        return ["-f", ""]


class Durable(CapacityCases, unittest.TestCase):
    def storage_args(self):
        return []

    def test_a_restart_keeps_every_metric_and_refusals_were_not_logged(self):
        tmp = tempfile.TemporaryDirectory()
        snapshot = os.path.join(tmp.name, "db.json")
        try:
            with Server("--max-metrics", "2", "-i", "1", snapshot=snapshot) as s:
                self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
                self.assertEqual(self.update(s, "counter", "b", 3)[0], 200)
                self.assert_refused(self.update(s, "gauge", "c", 1))
                s.kill()
                s.expect_status(-9)
            # A lower cap keeps what is stored and refuses only new names.
            with Server("--max-metrics", "1", snapshot=snapshot) as s:
                self.assertEqual(s.value("gauge", "a"), (200, "1"))
                self.assertEqual(s.value("counter", "b"), (200, "3"))
                self.assertEqual(s.value("gauge", "c")[0], 404)
                self.assertEqual(self.update(s, "counter", "b", 1)[0], 200)
                self.assert_refused(self.update(s, "gauge", "c", 1))
        finally:
            tmp.cleanup()


@unittest.skipUnless(DSN, "METRICS_TEST_DSN not set (tools/test.sh sets it)")
@unittest.skipUnless(PSQL, "psql not found")
class Postgres(CapacityCases, unittest.TestCase):
    """Each case on a database of its own, dropped after it."""

    def setUp(self):
        self.name = "metrics_cap_%s" % uuid.uuid4().hex[:10]
        psql(DSN, "CREATE DATABASE %s" % self.name)
        parts = urllib.parse.urlsplit(DSN)
        self.dsn = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))

    def tearDown(self):
        psql(DSN, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)

    def storage_args(self):
        return ["-d", self.dsn]

    def test_rows_already_in_the_tables_count(self):
        with self.server(3) as s:
            self.assertEqual(self.update(s, "gauge", "a", 1)[0], 200)
        psql(self.dsn, "INSERT INTO counters (name, delta, updated_at) VALUES ('x', 1, now()), ('y', 1, now())")
        with self.server(3) as s:
            self.assert_refused(self.update(s, "gauge", "b", 1))
            self.assertEqual(self.update(s, "counter", "x", 1)[0], 200)
            self.assertEqual(psql(self.dsn, "SELECT (SELECT count(*) FROM gauges) + (SELECT count(*) FROM counters)"),
                             "3")


if __name__ == "__main__":
    unittest.main()
