"""metrics-server with -d against the real PostgreSQL that tools/test.sh starts (METRICS_TEST_DSN)."""

import threading
import uuid

from harness import *  # noqa: F401,F403

DSN = os.environ.get("METRICS_TEST_DSN", "")
PGDIR = os.environ.get("METRICS_TEST_PGDIR", "")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def unique(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


@unittest.skipUnless(DSN, "METRICS_TEST_DSN not set (tools/test.sh sets it)")
class ServerOnPostgres(unittest.TestCase):
    def test_every_endpoint_with_a_database(self):
        g, c = unique("g"), unique("c")
        with Server("-d", DSN) as s:
            self.assertEqual(s.request("GET", "/ping")[0], 200)
            self.assertEqual(s.request("POST", "/update/gauge/%s/2.5" % g)[0], 200)
            self.assertEqual(s.value("gauge", g), (200, "2.5"))
            _, _, body = s.post_json("/update/", {"id": c, "type": "counter", "delta": 4})
            self.assertEqual(json.loads(body), {"id": c, "type": "counter", "delta": 4})
            status, _, body = s.post_json("/updates/", [{"id": c, "type": "counter", "delta": 1},
                                                        {"id": g, "type": "gauge", "value": 0.1},
                                                        {"id": c, "type": "counter", "delta": 2}])
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), [{"id": c, "type": "counter", "delta": 5},
                                                {"id": g, "type": "gauge", "value": 0.1},
                                                {"id": c, "type": "counter", "delta": 7}])
            _, _, body = s.post_json("/value/", {"id": g, "type": "gauge"})
            self.assertEqual(json.loads(body)["value"], 0.1)
            self.assertEqual(s.value("counter", unique("absent"))[0], 404)
            status, _, page = s.request("GET", "/")
            self.assertEqual(status, 200)
            self.assertIn(g.encode(), page)
            self.assertIn(("%s_total 7" % c).encode(), s.request("GET", "/metrics")[2])

    def test_a_bad_batch_leaves_the_tables_unchanged(self):
        g, c = unique("g"), unique("c")
        with Server("-d", DSN) as s:
            s.post_json("/update/", {"id": c, "type": "counter", "delta": 9223372036854775800})
            batch = [{"id": g, "type": "gauge", "value": 1}, {"id": c, "type": "counter", "delta": 100}]
            self.assertEqual(s.post_json("/updates/", batch)[0], 400)
            self.assertEqual(s.value("gauge", g)[0], 404)
            self.assertEqual(s.value("counter", c), (200, "9223372036854775800"))

    def test_two_daemons_sharing_one_database_add_up_exactly(self):
        c = unique("shared")
        with Server("-d", DSN) as a, Server("-d", DSN) as b:
            def hammer(server, n):
                conn = server.conn()
                for _ in range(n):
                    assert server.request("POST", "/update/counter/%s/1" % c, conn=conn)[0] == 200
                    assert server.post_json("/updates/", [{"id": c, "type": "counter", "delta": 2}],
                                            conn=conn)[0] == 200
                conn.close()
            threads = [threading.Thread(target=hammer, args=(srv, 100)) for srv in (a, b, a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(a.value("counter", c), (200, str(4 * 100 * 3)))
            self.assertEqual(b.value("counter", c), (200, str(4 * 100 * 3)))

    @unittest.skipUnless(PGDIR, "METRICS_TEST_PGDIR not set")
    def test_the_daemon_recovers_from_a_database_restart(self):
        c = unique("restart")
        with Server("-d", DSN) as s:
            self.assertEqual(s.request("POST", "/update/counter/%s/5" % c)[0], 200)
            subprocess.run([os.path.join(ROOT, "tools", "pg.sh"), "restart", PGDIR], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            # The first request after the restart may need the retry schedule (1 s, 3 s, 5 s).
            self.assertEqual(s.request("POST", "/update/counter/%s/6" % c)[0], 200)
            self.assertEqual(s.value("counter", c), (200, "11"))
            self.assertEqual(s.request("GET", "/ping")[0], 200)


class ServerWithoutDatabase(unittest.TestCase):
    """What -d does when no database answers: needs no DSN, so it always runs."""

    def test_ping_is_500_with_a_dead_database(self):
        dead = "postgres://postgres@127.0.0.1:%d/metrics?sslmode=disable&connect_timeout=1" % free_port()
        with Server("-d", dead) as s:
            self.assertEqual(s.request("GET", "/ping")[0], 500)

    def test_a_malformed_dsn_is_a_startup_error(self):
        r = subprocess.run([SERVER_BIN, "-a", "127.0.0.1:%d" % free_port(), "-d", "'postgres://x'"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"DATABASE_DSN", r.stderr)


if __name__ == "__main__":
    unittest.main()
