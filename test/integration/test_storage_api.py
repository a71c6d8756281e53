"""Deletion, expiry and the /values/ listing against the real metrics-server binary, in memory
only (-f "") and with a snapshot file written on an interval."""

from harness import *  # noqa: F401,F403


def delete(server, path, body=None, headers=None):
    return server.request("DELETE", path, body, headers)


def delete_json(server, obj, content_type="application/json"):
    return server.request("DELETE", "/value/", json.dumps(obj), {"Content-Type": content_type})


def listing(server):
    status, headers, body = server.request("GET", "/values/")
    assert status == 200, status
    assert headers["content-type"] == "application/json", headers
    return json.loads(body)


class DeletionMixin:
    """Run against each storage mode by the classes below."""

    def test_delete_by_url_answers_the_last_value_then_not_found(self):
        s = self.server
        self.assertEqual(s.request("POST", "/update/counter/del_url/5")[0], 200)
        self.assertEqual(s.request("POST", "/update/gauge/del_url/2.5")[0], 200)
        status, headers, body = delete(s, "/value/counter/del_url")
        self.assertEqual((status, body), (200, b"5"))
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertEqual(s.value("counter", "del_url")[0], 404)
        self.assertEqual(delete(s, "/value/counter/del_url")[0], 404)
        self.assertEqual(s.value("gauge", "del_url"), (200, "2.5"))  # the other kind stays
        status, _, body = delete(s, "/value/gauge/del_url")
        self.assertEqual((status, body), (200, b"2.5"))

    def test_delete_by_json_answers_the_removed_metric(self):
        s = self.server
        self.assertEqual(s.post_json("/update/", {"id": "del_json", "type": "gauge", "value": 0.125})[0], 200)
        status, headers, body = delete_json(s, {"id": "del_json", "type": "gauge"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(json.loads(body), {"id": "del_json", "type": "gauge", "value": 0.125})
        self.assertEqual(delete_json(s, {"id": "del_json", "type": "gauge"})[0], 404)
        self.assertIsNone(gauge(s, "del_json"))

    def test_delete_errors(self):
        s = self.server
        self.assertEqual(delete(s, "/value/counter/never_there")[0], 404)
        self.assertEqual(delete(s, "/value/bogus/x")[0], 404)
        self.assertEqual(delete(s, "/value/counter/")[0], 404)
        self.assertEqual(delete_json(s, {"id": "x"})[0], 400)
        self.assertEqual(delete_json(s, {"id": "x", "type": "bogus"})[0], 400)
        self.assertEqual(delete(s, "/value/", "{", {"Content-Type": "application/json"})[0], 400)
        self.assertEqual(delete_json(s, {"id": "x", "type": "gauge"}, "text/plain")[0], 415)
        for path, allow in [("/update/", "POST"), ("/updates/", "POST"), ("/update/gauge/x/1", "POST"),
                            ("/values/", "GET, HEAD"), ("/metrics", "GET, HEAD")]:
            status, headers, _ = delete(s, path)
            self.assertEqual((status, headers.get("allow")), (405, allow), path)
        status, headers, _ = s.request("PUT", "/value/gauge/x")
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD, DELETE"))
        status, headers, _ = s.request("GET", "/value/")
        self.assertEqual((status, headers.get("allow")), (405, "POST, DELETE"))

    def test_a_deleted_counter_starts_again_from_zero(self):
        s = self.server
        self.assertEqual(s.request("POST", "/update/counter/restart/40")[0], 200)
        self.assertEqual(s.request("POST", "/update/counter/restart/2")[0], 200)
        self.assertEqual(delete(s, "/value/counter/restart")[:3:2], (200, b"42"))
        status, _, body = s.post_json("/update/", {"id": "restart", "type": "counter", "delta": 3})
        self.assertEqual((status, json.loads(body)["delta"]), (200, 3))
        self.assertEqual(counter(s, "restart"), 3)

    def test_a_deleted_metric_leaves_every_listing(self):
        s = self.server
        self.assertEqual(s.request("POST", "/update/gauge/gone_everywhere/1")[0], 200)
        self.assertIn("gone_everywhere", s.request("GET", "/metrics")[2].decode())
        self.assertEqual(delete(s, "/value/gauge/gone_everywhere")[0], 200)
        self.assertNotIn("gone_everywhere", s.request("GET", "/metrics")[2].decode())
        self.assertNotIn("gone_everywhere", s.request("GET", "/")[2].decode())
        self.assertNotIn("gone_everywhere", [m["id"] for m in listing(s)])


class MemoryOnlyDeletion(DeletionMixin, ServerTestCase):
    server_args = ("-f", "")


class SnapshotDeletion(DeletionMixin, ServerTestCase):
    server_args = ("-i", "1")


class ValuesListing(unittest.TestCase):
    def test_values_lists_every_metric_sorted_by_id_with_update_times(self):
        with Server("-f", "") as s:
            self.assertEqual(listing(s), [])
            before = int(time.time() * 1000)
            batch = [{"id": "b", "type": "counter", "delta": 2}, {"id": "b", "type": "gauge", "value": 0.5},
                     {"id": "a", "type": "gauge", "value": 1e-7}, {"id": "B", "type": "counter", "delta": -4}]
            self.assertEqual(s.post_json("/updates/", batch)[0], 200)
            after = int(time.time() * 1000)
            got = listing(s)
            times = [m.pop("updated_at") for m in got]
            self.assertEqual(got, [{"id": "B", "type": "counter", "delta": -4},
                                   {"id": "a", "type": "gauge", "value": 1e-7},
                                   {"id": "b", "type": "gauge", "value": 0.5},
                                   {"id": "b", "type": "counter", "delta": 2}])
            for t in times:  # Unix milliseconds of the update (one clock: loopback, same host)
                self.assertTrue(before - 1000 <= t <= after + 1000, (before, t, after))
            # A later update moves its time forward, and only its own.
            wait_until(lambda: int(time.time() * 1000) > max(times) + 5)
            self.assertEqual(s.request("POST", "/update/gauge/a/2")[0], 200)
            again = {(m["id"], m["type"]): m["updated_at"] for m in listing(s)}
            self.assertGreater(again[("a", "gauge")], times[1])
            self.assertEqual(again[("b", "counter")], times[3])

    def test_values_is_gzipped_when_accepted_and_answers_head(self):
        with Server("-f", "") as s:
            batch = [{"id": "m%03d" % i, "type": "gauge", "value": i} for i in range(200)]
            self.assertEqual(s.post_json("/updates/", batch)[0], 200)
            plain = s.request("GET", "/values/")[2]
            status, headers, body = s.request("GET", "/values/", headers={"Accept-Encoding": "gzip"})
            self.assertEqual((status, headers.get("content-encoding")), (200, "gzip"))
            self.assertEqual(gzip.decompress(body), plain)
            self.assertEqual([m["id"] for m in json.loads(plain)], ["m%03d" % i for i in range(200)])
            status, headers, body = s.request("HEAD", "/values/")
            self.assertEqual((status, body), (200, b""))
            self.assertEqual(int(headers["content-length"]), len(plain))

    def test_the_page_shows_each_metrics_update_time(self):
        with Server("-f", "") as s:
            self.assertEqual(s.request("POST", "/update/gauge/shown/1")[0], 200)
            page = s.request("GET", "/")[2].decode()
            self.assertIn("<th>Updated</th>", page)
            self.assertRegex(page, r'<td>shown</td><td>gauge</td><td>1</td><td><time datetime="\d{4}-\d\d-\d\dT'
                                   r'\d\d:\d\d:\d\d\.\d{3}Z">\d+s ago</time></td>')


class Snapshots(unittest.TestCase):
    def test_a_deletion_survives_a_restart_and_update_times_are_kept(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "db.json")
            with Server("-i", "1", snapshot=path) as s:
                self.assertEqual(s.request("POST", "/update/counter/kept/7")[0], 200)
                self.assertEqual(s.request("POST", "/update/counter/dropped/1")[0], 200)
                self.assertEqual(delete(s, "/value/counter/dropped")[0], 200)
                self.assertEqual(s.stop(), 0)  # a final snapshot at shutdown
            with Server("-i", "1", "-r", snapshot=path) as s:
                self.assertEqual(counter(s, "kept"), 7)
                self.assertIsNone(counter(s, "dropped"))
                self.assertEqual([m["id"] for m in listing(s)], ["kept"])


class Expiry(unittest.TestCase):
    def check_expiry(self, server):
        s = server
        start = time.monotonic()
        status, _, body = s.post_json("/update/", {"id": "short", "type": "counter", "delta": 5})
        self.assertEqual((status, json.loads(body)["delta"]), (200, 5))
        self.assertEqual(s.request("POST", "/update/gauge/short_g/1")[0], 200)
        present = counter(s, "short")
        if time.monotonic() - start < 0.9:  # read well within the ttl (a stalled host may not be)
            self.assertEqual(present, 5)
        self.assertTrue(wait_until(lambda: counter(s, "short") is None), "never expired")
        self.assertTrue(wait_until(lambda: gauge(s, "short_g") is None), "never expired")
        self.assertEqual(s.value("counter", "short")[0], 404)
        self.assertEqual(listing(s), [])
        self.assertNotIn("short", s.request("GET", "/metrics")[2].decode())
        self.assertEqual(delete(s, "/value/counter/short")[0], 404)  # expired: as if unknown
        # An update after expiry starts from scratch.
        status, _, body = s.post_json("/update/", {"id": "short", "type": "counter", "delta": 2})
        self.assertEqual((status, json.loads(body)["delta"]), (200, 2))

    def test_a_metric_not_updated_within_the_ttl_disappears(self):
        with Server("-f", "", "--metric-ttl", "1s") as s:
            self.check_expiry(s)

    def test_the_ttl_comes_from_the_environment_too(self):
        with Server("-f", "", env={"METRIC_TTL": "1s"}) as s:
            self.check_expiry(s)

    def test_ttl_with_a_snapshot_file(self):
        with Server("-i", "1", "--metric-ttl", "1s") as s:
            self.check_expiry(s)

    def test_a_bad_ttl_is_a_usage_error(self):
        result = subprocess.run([SERVER_BIN, "-f", "", "--metric-ttl", "soon"], env=clean_env(),
                                capture_output=True, timeout=STOP_TIMEOUT)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"metric-ttl", result.stderr)


if __name__ == "__main__":
    unittest.main()
