"""Every endpoint and status code of API.md against the real metrics-server binary."""

from harness import *  # noqa: F401,F403


class UpdateAndValueByUrl(ServerTestCase):
    def test_gauge_update_then_value_in_shortest_fixed_form(self):
        s = self.server
        for sent, shown in [("1.5", "1.5"), ("123456.7", "123456.7"), ("1234", "1234"), ("0.000001", "0.000001"),
                            ("1e3", "1000"), ("-0.25", "-0.25")]:
            status, _, body = s.request("POST", "/update/gauge/g_fmt/%s" % sent)
            self.assertEqual((status, body), (200, b"OK"), sent)
            self.assertEqual(s.value("gauge", "g_fmt"), (200, shown), sent)

    def test_counter_adds_deltas(self):
        s = self.server
        self.assertEqual(s.request("POST", "/update/counter/c_add/5")[0], 200)
        self.assertEqual(s.request("POST", "/update/counter/c_add/-2")[0], 200)
        self.assertEqual(s.value("counter", "c_add"), (200, "3"))

    def test_same_name_as_gauge_and_counter_are_separate(self):
        s = self.server
        s.request("POST", "/update/gauge/both/2.5")
        s.request("POST", "/update/counter/both/7")
        self.assertEqual(s.value("gauge", "both"), (200, "2.5"))
        self.assertEqual(s.value("counter", "both"), (200, "7"))

    def test_text_update_needs_no_content_type(self):
        status, headers, _ = self.server.request("POST", "/update/gauge/ct/1", headers={"Content-Type": "text/xml"})
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))

    def test_missing_name_is_404(self):
        self.assertEqual(self.server.request("POST", "/update/gauge/")[0], 404)
        self.assertEqual(self.server.request("POST", "/update/counter/")[0], 404)

    def test_bad_kind_and_bad_values_are_400(self):
        s = self.server
        for path in ["/update/unknown/x/1", "/update/gauge/x/none", "/update/counter/x/1.5", "/update/gauge/x/NaN",
                     "/update/gauge/x/inf", "/update/counter/x/99999999999999999999", "/update/gauge/x/1e999"]:
            self.assertEqual(s.request("POST", path)[0], 400, path)
        self.assertEqual(s.value("gauge", "x")[0], 404)

    def test_counter_overflow_is_400_and_changes_nothing(self):
        s = self.server
        s.request("POST", "/update/counter/ovf/9223372036854775800")
        self.assertEqual(s.request("POST", "/update/counter/ovf/100")[0], 400)
        self.assertEqual(s.value("counter", "ovf"), (200, "9223372036854775800"))

    def test_other_methods_are_405(self):
        status, headers, _ = self.server.request("GET", "/update/gauge/x/1")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "POST")
        self.assertEqual(self.server.request("POST", "/value/gauge/x")[0], 405)

    def test_unknown_metric_kind_or_path_is_404(self):
        s = self.server
        self.assertEqual(s.value("gauge", "never_set")[0], 404)
        self.assertEqual(s.value("bogus", "x")[0], 404)
        self.assertEqual(s.request("GET", "/nope")[0], 404)
        self.assertEqual(s.request("GET", "/value")[0], 404)

    def test_no_redirects_for_paths_without_trailing_slash(self):
        self.assertEqual(self.server.request("POST", "/update")[0], 404)
        self.assertEqual(self.server.request("POST", "/updates")[0], 404)

    def test_percent_encoded_names(self):
        s = self.server
        self.assertEqual(s.request("POST", "/update/gauge/a%2Bb/2")[0], 200)
        self.assertEqual(s.value("gauge", "a+b"), (200, "2"))
        self.assertEqual(s.request("POST", "/update/gauge/a%2Fb/2")[0], 400)
        self.assertEqual(s.request("POST", "/update/gauge/bad%zz/2")[0], 400)

    def test_name_too_long_is_400(self):
        self.assertEqual(self.server.request("POST", "/update/gauge/%s/1" % ("n" * 256))[0], 400)
        self.assertEqual(self.server.request("POST", "/update/gauge/%s/1" % ("n" * 255))[0], 200)


class JsonEndpoints(ServerTestCase):
    def test_update_returns_the_metric_after_the_update(self):
        s = self.server
        status, headers, body = s.post_json("/update/", {"id": "jg", "type": "gauge", "value": 0.1})
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(json.loads(body), {"id": "jg", "type": "gauge", "value": 0.1})
        s.post_json("/update/", {"id": "jc", "type": "counter", "delta": 3})
        _, _, body = s.post_json("/update/", {"id": "jc", "type": "counter", "delta": 4})
        self.assertEqual(json.loads(body), {"id": "jc", "type": "counter", "delta": 7})

    def test_value_returns_value_or_delta(self):
        s = self.server
        s.post_json("/update/", {"id": "jv", "type": "gauge", "value": 2.0000000000000004})
        status, _, body = s.post_json("/value/", {"id": "jv", "type": "gauge"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["value"], 2.0000000000000004)  # bit-exact round trip
        self.assertEqual(s.post_json("/value/", {"id": "absent", "type": "counter"})[0], 404)

    def test_bad_json_is_400_and_stores_nothing(self):
        s = self.server
        cases = ['{"id":"b1","type":"gauge"', '{"id":"b1","type":"gauge","value":"1"}', '{"type":"gauge","value":1}',
                 '{"id":"b1","value":1}', '{"id":"b1","type":"counter","delta":1.5}',
                 '{"id":"b1","type":"counter","value":1}', '[]', '{"id":"b1","type":"gauge","value":1} x',
                 '{"id":5,"type":"gauge","value":1}']
        for body in cases:
            status, _, _ = s.request("POST", "/update/", body, {"Content-Type": "application/json"})
            self.assertEqual(status, 400, body)
        self.assertEqual(s.post_json("/value/", {"id": "b1", "type": "gauge"})[0], 404)
        self.assertEqual(s.post_json("/value/", {"id": "b1", "type": "counter"})[0], 404)
        self.assertEqual(s.request("POST", "/value/", "{", {"Content-Type": "application/json"})[0], 400)

    def test_json_endpoints_need_json_content_type(self):
        s = self.server
        body = json.dumps({"id": "ct", "type": "gauge", "value": 1})
        self.assertEqual(s.request("POST", "/update/", body, {"Content-Type": "text/plain"})[0], 415)
        self.assertEqual(s.request("POST", "/update/", body)[0], 415)
        self.assertEqual(
            s.request("POST", "/update/", body, {"Content-Type": "application/json; charset=utf-8"})[0], 200)

    def test_batch_is_stored_in_order_with_repeats(self):
        s = self.server
        batch = [{"id": "bc", "type": "counter", "delta": 1}, {"id": "bg", "type": "gauge", "value": 1.5},
                 {"id": "bc", "type": "counter", "delta": 2}, {"id": "bg", "type": "gauge", "value": 2.5}]
        status, _, body = s.post_json("/updates/", batch)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), [{"id": "bc", "type": "counter", "delta": 1},
                                            {"id": "bg", "type": "gauge", "value": 1.5},
                                            {"id": "bc", "type": "counter", "delta": 3},
                                            {"id": "bg", "type": "gauge", "value": 2.5}])
        self.assertEqual(s.value("counter", "bc"), (200, "3"))
        self.assertEqual(s.value("gauge", "bg"), (200, "2.5"))

    def test_batch_with_one_bad_element_stores_nothing(self):
        s = self.server
        batch = [{"id": "atom1", "type": "gauge", "value": 1}, {"id": "atom2", "type": "counter", "delta": 1.5}]
        self.assertEqual(s.post_json("/updates/", batch)[0], 400)
        self.assertEqual(s.value("gauge", "atom1")[0], 404)
        s.post_json("/update/", {"id": "atomc", "type": "counter", "delta": 9223372036854775800})
        batch = [{"id": "atom3", "type": "gauge", "value": 1}, {"id": "atomc", "type": "counter", "delta": 100}]
        self.assertEqual(s.post_json("/updates/", batch)[0], 400)
        self.assertEqual(s.value("gauge", "atom3")[0], 404)
        self.assertEqual(s.value("counter", "atomc"), (200, "9223372036854775800"))

    def test_empty_batch_is_400(self):
        self.assertEqual(self.server.post_json("/updates/", [])[0], 400)


class PagesAndProbes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()
        cls.server.request("POST", "/update/gauge/zeta/1")
        cls.server.request("POST", "/update/gauge/%3Cscript%3E/2")
        cls.server.request("POST", "/update/counter/alpha/3")
        cls.server.request("POST", "/update/gauge/my.metric/4.5")

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def test_index_is_sorted_escaped_html5(self):
        status, headers, body = self.server.request("GET", "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        page = body.decode()
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        # One script, the page's own, after the table: the name <script> is text.
        self.assertEqual(page.count("<script>"), 1)
        self.assertGreater(page.index("<script>"), page.index("</table>"))
        self.assertIn('<td class="name">&lt;script&gt;</td>', page)
        self.assertLess(page.index("&lt;script&gt;"), page.index("alpha"))
        self.assertLess(page.index("alpha"), page.index("my.metric"))
        self.assertLess(page.index("my.metric"), page.index("zeta"))

    def test_ping_is_200_on_memory_storage(self):
        self.assertEqual(self.server.request("GET", "/ping")[0], 200)

    def test_prometheus_exposition(self):
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertIn("# TYPE alpha_total counter\nalpha_total 3\n", text)
        self.assertIn("# TYPE zeta gauge\nzeta 1\n", text)
        self.assertIn('my_metric{id="my.metric"} 4.5\n', text)

    def test_head_has_length_but_no_body(self):
        c = self.server.conn()
        c.request("HEAD", "/")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertGreater(int(r.getheader("Content-Length")), 0)
        self.assertEqual(r.read(), b"")
        c.close()


class Compression(ServerTestCase):
    def test_gzip_request_body_is_inflated(self):
        body = gzip.compress(json.dumps([{"id": "gz", "type": "counter", "delta": 5}]).encode())
        status, _, _ = self.server.request("POST", "/updates/", body,
                                           {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(self.server.value("counter", "gz"), (200, "5"))

    def test_invalid_gzip_is_400(self):
        status, _, _ = self.server.request("POST", "/update/", b"\x1f\x8bnot gzip at all",
                                           {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertEqual(status, 400)

    def test_gzip_bomb_is_413(self):
        with Server("-max-decoded-bytes", "100000") as s:
            bomb = gzip.compress(b"[" + b" " * 200000 + b"]")
            status, _, _ = s.request("POST", "/updates/", bomb,
                                     {"Content-Type": "application/json", "Content-Encoding": "gzip"})
            self.assertEqual(status, 413)

    def test_responses_are_gzipped_when_accepted(self):
        self.server.request("POST", "/update/gauge/gzr/1.25")
        for path, method, body, ctype in [("/value/gauge/gzr", "GET", None, "text/plain"),
                                          ("/", "GET", None, "text/html"),
                                          ("/value/", "POST", '{"id":"gzr","type":"gauge"}', "application/json")]:
            headers = {"Accept-Encoding": "gzip"}
            if body:
                headers["Content-Type"] = "application/json"
            status, h, data = self.server.request(method, path, body, headers)
            self.assertEqual(status, 200)
            self.assertEqual(h.get("content-encoding"), "gzip", path)
            self.assertTrue(h["content-type"].startswith(ctype))
            self.assertEqual(int(h["content-length"]), len(data))
            plain = gzip.decompress(data).decode()
            self.assertIn("1.25", plain)

    def test_no_gzip_without_accept_encoding(self):
        status, h, data = self.server.request("GET", "/ping")
        self.assertNotIn("content-encoding", h)


class Signing(ServerTestCase):
    KEY = "s3cret"
    server_args = ("-k", KEY)

    def test_good_hash_is_accepted_and_response_is_signed(self):
        body = json.dumps({"id": "sig", "type": "gauge", "value": 3}).encode()
        status, h, data = self.server.request("POST", "/update/", body,
                                              {"Content-Type": "application/json", "HashSHA256": sign(self.KEY, body)})
        self.assertEqual(status, 200)
        self.assertEqual(h["hashsha256"], sign(self.KEY, data))

    def test_header_name_is_case_insensitive(self):
        body = json.dumps({"id": "sig2", "type": "gauge", "value": 3}).encode()
        status, _, _ = self.server.request("POST", "/update/", body,
                                           {"Content-Type": "application/json", "Hashsha256": sign(self.KEY, body)})
        self.assertEqual(status, 200)

    def test_bad_hash_is_400_and_stores_nothing(self):
        body = json.dumps({"id": "sigbad", "type": "gauge", "value": 3}).encode()
        status, h, data = self.server.request("POST", "/update/", body,
                                              {"Content-Type": "application/json", "HashSHA256": "00" * 32})
        self.assertEqual(status, 400)
        self.assertEqual(h["hashsha256"], sign(self.KEY, data))
        self.assertEqual(self.server.value("gauge", "sigbad")[0], 404)

    def test_missing_hash_is_accepted(self):
        self.assertEqual(self.server.post_json("/update/", {"id": "nohash", "type": "gauge", "value": 1})[0], 200)

    def test_hash_covers_gzip_bytes_as_received_and_gzip_response_as_sent(self):
        body = gzip.compress(json.dumps([{"id": "sgz", "type": "counter", "delta": 2}]).encode())
        status, h, data = self.server.request("POST", "/updates/", body, {
            "Content-Type": "application/json", "Content-Encoding": "gzip", "Accept-Encoding": "gzip",
            "HashSHA256": sign(self.KEY, body)})
        self.assertEqual(status, 200)
        self.assertEqual(h["content-encoding"], "gzip")
        self.assertEqual(h["hashsha256"], sign(self.KEY, data))

    def test_require_hash_flag_refuses_unsigned_bodies(self):
        with Server("-k", self.KEY, "-require-hash") as s:
            # Missing credentials: 401; a wrong signature stays 400.
            self.assertEqual(s.post_json("/update/", {"id": "r", "type": "gauge", "value": 1})[0], 401)
            self.assertEqual(s.post_json("/update/", {"id": "r", "type": "gauge", "value": 1},
                                         headers={"HashSHA256": "0" * 64})[0], 400)


if __name__ == "__main__":
    unittest.main()
