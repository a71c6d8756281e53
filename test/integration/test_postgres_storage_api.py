"""metrics-server on PostgreSQL (METRICS_TEST_DSN, started by tools/test.sh): deletion, the /values/
listing with update times from the database clock, expiry, and adoption of a database the Go server
wrote (test/fixtures/go_postgres_schema.sql). Rows are read and moved in time with psql."""

import glob
import sys
import urllib.parse
import uuid

from harness import *  # noqa: F401,F403

DSN = os.environ.get("METRICS_TEST_DSN", "")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "test", "fixtures")


def find_psql():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)
    return found[0] if found else shutil.which("psql")


PSQL = find_psql()


def unique(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def psql(dsn, sql=None, file=None):
    """The output of `sql` (or of the script `file`), unaligned, tuples only, stripped."""
    args = [PSQL, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
    args += ["-f", file] if file else ["-c", sql]
    r = subprocess.run(args, capture_output=True, timeout=60, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return r.stdout.strip()


def db_millis(dsn, expression="now()"):
    return int(psql(dsn, "SELECT floor(extract(epoch FROM %s) * 1000)::int8" % expression))


def with_database(dsn, name):
    """`dsn` (a postgres:// URI, as tools/pg.sh prints) naming database `name` instead."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


class ScratchDatabase:
    """An empty database of its own on the test server, dropped on exit."""

    def __enter__(self):
        self.name = unique("metrics_it")
        psql(DSN, "CREATE DATABASE %s" % self.name)
        self.dsn = with_database(DSN, self.name)
        return self

    def __exit__(self, *exc):
        psql(DSN, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)


def skip_with_reason(test, reason):
    """Skips, saying why on stderr too (the routes come with the storage API change)."""
    print("\nSKIP %s: %s" % (test.id(), reason), file=sys.stderr)
    test.skipTest(reason)


@unittest.skipUnless(DSN, "METRICS_TEST_DSN not set (tools/test.sh sets it)")
@unittest.skipUnless(PSQL, "psql not found")
class PostgresStorageApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """Which of the routes this build has: DELETE answers 405 and /values/ 404 without them."""
        with Server("-d", DSN) as s:
            cls.delete_status = s.request("DELETE", "/value/gauge/%s" % unique("probe"))[0]
            cls.values_status = s.request("GET", "/values/")[0]
        help_text = subprocess.run([SERVER_BIN, "--help"], capture_output=True, timeout=30).stdout
        cls.has_ttl = b"--metric-ttl" in help_text

    def require_delete(self):
        if self.delete_status == 405:
            skip_with_reason(self, "DELETE /value/ answers 405: not in this build")

    def require_values(self):
        if self.values_status in (404, 405):
            skip_with_reason(self, "GET /values/ answers %d: not in this build" % self.values_status)

    def test_delete_by_url_answers_the_last_value_then_404(self):
        g, c = unique("g"), unique("c")
        self.require_delete()
        with Server("-d", DSN) as s:
            self.assertEqual(s.request("POST", "/update/gauge/%s/2.5" % g)[0], 200)
            self.assertEqual(s.request("POST", "/update/counter/%s/7" % c)[0], 200)
            status, _, body = s.request("DELETE", "/value/gauge/%s" % g)
            self.assertEqual((status, body), (200, b"2.5"))
            self.assertEqual(s.value("gauge", g)[0], 404)
            self.assertEqual(s.request("DELETE", "/value/gauge/%s" % g)[0], 404)
            status, _, body = s.request("DELETE", "/value/counter/%s" % c)
            self.assertEqual((status, body), (200, b"7"))
            self.assertEqual(psql(DSN, "SELECT count(*) FROM counters WHERE name = '%s'" % c), "0")
            # A deleted counter starts again from zero.
            self.assertEqual(s.request("POST", "/update/counter/%s/1" % c)[0], 200)
            self.assertEqual(s.value("counter", c), (200, "1"))

    def test_delete_json_answers_the_removed_metric(self):
        g, c = unique("g"), unique("c")
        self.require_delete()
        with Server("-d", DSN) as s:
            s.post_json("/update/", {"id": c, "type": "counter", "delta": 40})
            s.post_json("/update/", {"id": c, "type": "counter", "delta": 2})
            s.post_json("/update/", {"id": g, "type": "gauge", "value": -0.5})
            headers = {"Content-Type": "application/json"}
            status, _, body = s.request("DELETE", "/value/", json.dumps({"id": c, "type": "counter"}), headers)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), {"id": c, "type": "counter", "delta": 42})
            status, _, body = s.request("DELETE", "/value/", json.dumps({"id": g, "type": "gauge"}), headers)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), {"id": g, "type": "gauge", "value": -0.5})
            self.assertEqual(s.request("DELETE", "/value/", json.dumps({"id": c, "type": "counter"}), headers)[0],
                             404)
            self.assertEqual(psql(DSN, "SELECT (SELECT count(*) FROM gauges WHERE name = '%s')"
                                       " + (SELECT count(*) FROM counters WHERE name = '%s')" % (g, c)), "0")

    def test_values_lists_update_times_from_the_database_clock(self):
        g, c = unique("g"), unique("c")
        self.require_values()
        with Server("-d", DSN) as s:
            before = db_millis(DSN)
            self.assertEqual(s.post_json("/updates/", [{"id": g, "type": "gauge", "value": 1.5},
                                                       {"id": c, "type": "counter", "delta": 3}])[0], 200)
            after = db_millis(DSN)
            psql(DSN, "UPDATE gauges SET updated_at = '2021-02-03 04:05:06.789+00' WHERE name = '%s'" % g)
            status, _, body = s.request("GET", "/values/")
            self.assertEqual(status, 200)
            listed = json.loads(body)
            ids = [m["id"] for m in listed]
            self.assertEqual(ids, sorted(ids))
            ours = {(m["id"], m["type"]): m for m in listed if m["id"] in (g, c)}
            self.assertEqual(ours[(g, "gauge")], {"id": g, "type": "gauge", "value": 1.5,
                                                  "updated_at": 1612325106789})
            counter = ours[(c, "counter")]
            self.assertEqual(counter["delta"], 3)
            self.assertTrue(before <= counter["updated_at"] <= after, (before, counter, after))

    def test_a_go_server_database_is_adopted_end_to_end(self):
        with ScratchDatabase() as db:
            psql(db.dsn, file=os.path.join(FIXTURES, "go_postgres_schema.sql"))
            with Server("-d", db.dsn) as s:
                self.assertEqual(s.request("GET", "/ping")[0], 200)
                self.assertEqual(s.value("gauge", "RandomValue"), (200, "-0.5"))
                self.assertEqual(s.value("counter", "PollCount"), (200, "9000"))
                self.assertEqual(s.value("counter", "Requests"), (200, "9223372036854775000"))
                self.assertEqual(s.value("counter", "Negative"), (200, "-42"))
                _, _, body = s.post_json("/value/", {"id": "Alloc", "type": "gauge"})
                self.assertEqual(json.loads(body), {"id": "Alloc", "type": "gauge", "value": 1234567})
                self.assertEqual(s.request("POST", "/update/counter/PollCount/5")[0], 200)
                self.assertEqual(s.value("counter", "PollCount"), (200, "9005"))
                status, _, body = s.request("GET", "/values/")
                if status == 200:
                    listed = {(m["id"], m["type"]): m for m in json.loads(body)}
                    self.assertEqual(len(listed), 7)
                    self.assertEqual(listed[("Negative", "counter")]["updated_at"],
                                     db_millis(db.dsn, "'2024-05-01 10:00:04'::timestamp::timestamptz"))
            self.assertEqual(psql(db.dsn, "SELECT string_agg(column_name, ',' ORDER BY column_name)"
                                          " FROM information_schema.columns WHERE table_name = 'counters'"),
                             "delta,name,updated_at")
            self.assertEqual(psql(db.dsn, "SELECT count(*) FROM go_schema_migrations"), "1")

    def test_an_expired_metric_is_gone_and_restarts_from_zero(self):
        if not self.has_ttl:
            skip_with_reason(self, "metrics-server has no --metric-ttl in this build")
        c = unique("c")
        with Server("-d", DSN, "--metric-ttl", "1h") as s:
            self.assertEqual(s.request("POST", "/update/counter/%s/5" % c)[0], 200)
            self.assertEqual(s.value("counter", c), (200, "5"))
            psql(DSN, "UPDATE counters SET updated_at = now() - interval '61 minutes' WHERE name = '%s'" % c)
            self.assertEqual(s.value("counter", c)[0], 404)
            self.assertNotIn(c.encode(), s.request("GET", "/metrics")[2])
            self.assertEqual(s.request("POST", "/update/counter/%s/3" % c)[0], 200)
            self.assertEqual(s.value("counter", c), (200, "3"))


    def test_metrics_shows_the_pool_and_statement_figures(self):
        with ScratchDatabase() as db, Server("-d", db.dsn) as s:
            name = unique("c")
            self.assertEqual(s.request("POST", "/update/counter/%s/2" % name)[0], 200)
            self.assertEqual(s.request("DELETE", "/value/counter/%s" % name)[0], 200)
            status, _, body = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        got = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                got[key] = float(value)
        self.assertEqual(got["metrics_server_metrics_deleted_total"], 1)
        self.assertEqual(got["metrics_server_postgres_connections_in_use"], 0)  # the listing gave its back
        self.assertEqual(got["metrics_server_postgres_requests_waiting"], 0)
        # Migrations and PREPAREs run inside the first statement's setup, not counted apart.
        self.assertGreaterEqual(got["metrics_server_postgres_statement_duration_seconds_count"], 2)
        self.assertEqual(got['metrics_server_postgres_statement_duration_seconds_bucket{le="+Inf"}'],
                         got["metrics_server_postgres_statement_duration_seconds_count"])
        self.assertEqual(got["metrics_server_postgres_statement_errors_total"], 0)


if __name__ == "__main__":
    unittest.main()
