"""HTTP/1.1 framing, keep-alive, pipelining, limits and timeouts over raw sockets."""

import socket

from harness import *  # noqa: F401,F403


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else None


class Framing(ServerTestCase):
    server_args = ("-max-header-bytes", "2048", "-max-body-bytes", "65536", "-max-uri-bytes", "512")

    def exchange(self, data):
        return raw_exchange(self.server.port, data)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        c = self.server.conn()
        for i in range(50):
            status, _, _ = self.server.request("POST", "/update/counter/ka/1", conn=c)
            self.assertEqual(status, 200)
        c.close()
        self.assertEqual(self.server.value("counter", "ka"), (200, "50"))

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = b"".join(b"POST /update/gauge/pipe/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
        reqs += b"GET /value/gauge/pipe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out = self.exchange(reqs)
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 11)
        self.assertTrue(out.endswith(b"\r\n\r\n9"))

    def test_http10_closes_after_the_answer(self):
        out = self.exchange(b"GET /ping HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 200"))
        self.assertIn(b"Connection: close", out)

    def test_chunked_request_body(self):
        body = b'[{"id":"chunky","type":"counter","delta":4}]'
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
        req = (b"POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked + b"0\r\n\r\n")
        self.assertEqual(status_of(self.exchange(req)), 200)
        self.assertEqual(self.server.value("counter", "chunky"), (200, "4"))

    def test_ambiguous_framing_is_400_and_closes(self):
        cases = [
            b"POST /update/gauge/f/1 HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /update/gauge/f/1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"GET /ping HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /ping HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET /ping HTTP/1.1\rHost: x\r\n\r\n",
            b"GET /ping HTTP/1.1\r\nHo\x00st: x\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"GET /ping HTTP/2.0\r\n\r\n",
            b"POST /updates/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST /update/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        ]
        for req in cases:
            # Closed means the peer sees EOF (or a reset) after the answer, not just the header.
            out = exchange_until_eof(self.server.port, req)
            self.assertEqual(status_of(out), 400, req)
            self.assertIn(b"Connection: close", out, req)
        self.assertEqual(self.server.value("gauge", "f")[0], 404)

    def test_limits_answer_414_431_413(self):
        self.assertEqual(status_of(self.exchange(b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: x\r\n\r\n")), 414)
        self.assertEqual(status_of(self.exchange(b"GET /ping HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 3000 + b"\r\n\r\n")), 431)
        out = self.exchange(b"POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n")
        self.assertEqual(status_of(out), 413)

    def test_too_many_metrics_in_a_batch_is_413(self):
        with Server("-max-batch", "3") as s:
            batch = [{"id": "m%d" % i, "type": "gauge", "value": i} for i in range(4)]
            self.assertEqual(s.post_json("/updates/", batch)[0], 413)
            self.assertEqual(s.value("gauge", "m0")[0], 404)

    def test_expect_100_continue(self):
        body = json.dumps({"id": "cont", "type": "gauge", "value": 8}).encode()
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
            s.sendall(b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            self.assertEqual(s.recv(100), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(body)
            out = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                out += b
        self.assertEqual(status_of(out), 200)

    def test_a_bad_client_does_not_disturb_others(self):
        bad = socket.create_connection(("127.0.0.1", self.server.port))
        bad.sendall(b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        self.assertEqual(self.server.request("GET", "/ping")[0], 200)
        bad.close()


class Timeouts(unittest.TestCase):
    def test_stalled_request_gets_408_and_idle_connection_is_closed(self):
        with Server("-header-timeout", "1", "-idle-timeout", "1", "-body-timeout", "1") as s:
            start = time.monotonic()
            out = raw_exchange(s.port, b"POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", timeout=10)
            self.assertEqual(status_of(out), 408)
            self.assertLess(time.monotonic() - start, 5)
            start = time.monotonic()
            self.assertEqual(raw_exchange(s.port, b"", timeout=10), b"")
            self.assertLess(time.monotonic() - start, 5)
            self.assertEqual(s.request("GET", "/ping")[0], 200)

    def test_connection_limit_answers_503(self):
        with Server("-max-connections", "2") as s:
            held = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
            time.sleep(0.2)
            out = raw_exchange(s.port, b"GET /ping HTTP/1.1\r\n\r\n")
            self.assertEqual(status_of(out), 503)
            for h in held:
                h.close()
            time.sleep(0.2)
            self.assertEqual(s.request("GET", "/ping")[0], 200)


if __name__ == "__main__":
    unittest.main()
