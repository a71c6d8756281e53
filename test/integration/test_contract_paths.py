"""Contract paths of API.md and CONFIGURATION.md end to end: routing edges, encodings, HEAD, the
write timeout, buffer growth and shrink, periodic snapshots, configuration forms, and the agent's
flags, environment, config file, exit statuses and signals."""

import http.client
import re
import socket
import threading

from harness import *  # noqa: F401,F403

# The connection's starting receive buffer (src/server/listener.cpp, initial_buffer) and the size
# above which it is given back after a request (retained_buffer).
INITIAL_BUFFER = 8 * 1024
RETAINED_BUFFER = 64 * 1024


def status_of(response):
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.") else None


class ResponseReader:
    """Reads Content-Length framed HTTP/1.1 responses from a raw socket, one at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("the server closed the connection mid-sequence")
        self.buffer += chunk

    def next(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body


def http_request(method, path, body=b"", content_type="application/json"):
    head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
    if body:
        head += "Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body))
    return head.encode() + b"\r\n" + body


def counter_batch(prefix, count, delta):
    return [{"id": "%s_%05d" % (prefix, i), "type": "counter", "delta": delta} for i in range(count)]


class Routing(ServerTestCase):
    def test_extra_path_segments_are_404_and_change_nothing(self):
        s = self.server
        for path in ["/update/gauge/seg/1/extra", "/update/counter/seg/1/", "/update/gauge/seg/1/2/3"]:
            self.assertEqual(s.request("POST", path)[0], 404, path)
        self.assertEqual(s.value("gauge", "seg")[0], 404)
        self.assertEqual(s.value("counter", "seg")[0], 404)
        s.request("POST", "/update/gauge/seg/4")
        for path in ["/value/gauge/seg/extra", "/value/gauge/seg/", "/value/gauge/seg/4"]:
            self.assertEqual(s.request("GET", path)[0], 404, path)
        self.assertEqual(s.value("gauge", "seg"), (200, "4"))

    def test_head_on_a_value_url_has_the_length_and_no_body(self):
        s = self.server
        s.request("POST", "/update/gauge/headed/12.5")
        c = s.conn()
        try:
            c.request("HEAD", "/value/gauge/headed")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Length"), str(len("12.5")))
            self.assertEqual(r.read(), b"")
            # The connection stays in step: the next answer is the next request's.
            c.request("HEAD", "/value/gauge/never_set_head")
            r = c.getresponse()
            self.assertEqual(r.status, 404)
            r.read()
            c.request("GET", "/value/gauge/headed")
            self.assertEqual(c.getresponse().read(), b"12.5")
        finally:
            c.close()

    def test_non_gzip_content_encoding_is_415_and_stores_nothing(self):
        s = self.server
        body = json.dumps([{"id": "enc", "type": "counter", "delta": 1}]).encode()
        for encoding in ["br", "deflate", "compress", "x-gzip2"]:
            status, _, _ = s.request("POST", "/updates/", body,
                                     {"Content-Type": "application/json", "Content-Encoding": encoding})
            self.assertEqual(status, 415, encoding)
        self.assertEqual(s.value("counter", "enc")[0], 404)

    def test_value_json_with_another_content_type_is_415(self):
        s = self.server
        s.post_json("/update/", {"id": "vj", "type": "gauge", "value": 1})
        body = json.dumps({"id": "vj", "type": "gauge"})
        self.assertEqual(s.request("POST", "/value/", body, {"Content-Type": "text/plain"})[0], 415)
        self.assertEqual(s.request("POST", "/value/", body)[0], 415)
        self.assertEqual(s.request("POST", "/value/", body, {"Content-Type": "application/json"})[0], 200)

    def test_no_gzip_without_accept_encoding_on_any_endpoint(self):
        s = self.server
        s.request("POST", "/update/gauge/plain/1.25")
        cases = [("GET", "/", None), ("GET", "/metrics", None), ("GET", "/value/gauge/plain", None),
                 ("POST", "/value/", '{"id":"plain","type":"gauge"}'),
                 ("POST", "/update/", '{"id":"plain","type":"gauge","value":1.25}'),
                 ("POST", "/updates/", '[{"id":"plain","type":"gauge","value":1.25}]')]
        for accept in [None, "identity", "br, deflate"]:
            for method, path, body in cases:
                headers = {"Content-Type": "application/json"} if body else {}
                if accept:
                    headers["Accept-Encoding"] = accept
                status, h, data = s.request(method, path, body, headers)
                self.assertEqual(status, 200, (path, accept))
                self.assertNotIn("content-encoding", h, (path, accept))
                self.assertIn(b"1.25", data, (path, accept))


class Prometheus(unittest.TestCase):
    def test_names_that_collide_after_sanitising_stay_distinct_series(self):
        with Server() as s:
            for path in ["/update/gauge/a.b/1", "/update/gauge/a-b/2", "/update/gauge/x_total/3",
                         "/update/counter/x/4", "/update/gauge/9lives/5"]:
                self.assertEqual(s.request("POST", path)[0], 200, path)
            status, _, body = s.request("GET", "/metrics")
            self.assertEqual(status, 200)
            # The stored metrics come first, then the daemon's own (process_...); HELP lines aside.
            stored = body.decode().split("# HELP process_")[0]
            self.assertEqual("".join(line + "\n" for line in stored.splitlines() if not line.startswith("# HELP ")),
                             "# TYPE _9lives gauge\n_9lives{id=\"9lives\"} 5\n"
                             "# TYPE a_b gauge\na_b{id=\"a-b\"} 2\na_b{id=\"a.b\"} 1\n"
                             "# TYPE x_total counter\nx_total 4\n"
                             "# TYPE x_total_value gauge\nx_total_value{id=\"x_total\"} 3\n")


class Signing(unittest.TestCase):
    def test_a_hash_header_is_ignored(self):
        # `Hash` is not `HashSHA256`: a server with a key neither checks it nor refuses for it.
        with Server("-k", "key") as s:
            body = json.dumps({"id": "hashed", "type": "gauge", "value": 3}).encode()
            for value in ["none", "00" * 32, sign("other", body)]:
                status, h, data = s.request("POST", "/update/", body, {"Content-Type": "application/json",
                                                                        "Hash": value})
                self.assertEqual(status, 200, value)
                self.assertEqual(h["hashsha256"], sign("key", data))
            self.assertEqual(s.value("gauge", "hashed"), (200, "3"))


class ConnectionBuffer(unittest.TestCase):
    """Bodies several times the connection's starting buffer, alone and pipelined with small
    requests, so the buffer grows, gives its memory back, and grows again on one connection."""

    def assert_batch_answer(self, answer, expected):
        status, _, data = answer
        self.assertEqual(status, 200, data[:200])
        got = json.loads(data)
        # Compared whole, reported by the first difference (a diff of thousands of items is unreadable).
        first = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), None)
        self.assertEqual((len(got), first), (len(expected), None),
                         first is not None and (got[first], expected[first]))

    def test_a_body_many_times_the_starting_buffer_is_stored(self):
        batch = counter_batch("huge", 6000, 3)
        body = json.dumps(batch).encode()
        self.assertGreater(len(body), 30 * INITIAL_BUFFER)
        with Server() as s:
            self.assert_batch_answer(s.request("POST", "/updates/", body, {"Content-Type": "application/json"}),
                                     batch)
            self.assertEqual(s.value("counter", "huge_05999"), (200, "3"))

    def test_pipelined_large_and_small_requests_get_exact_answers(self):
        large_a = counter_batch("grow", 3000, 1)
        large_b = counter_batch("grow", 3000, 2)
        body_a, body_b = json.dumps(large_a).encode(), json.dumps(large_b).encode()
        self.assertGreater(len(body_a), 2 * RETAINED_BUFFER)
        with Server() as s, socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            reader = ResponseReader(sock)
            # A large request followed by small ones that fit the starting buffer: it grows, then shrinks.
            sock.sendall(http_request("POST", "/updates/", body_a) + http_request("POST", "/update/counter/tick/1")
                         + http_request("GET", "/value/counter/grow_02999"))
            self.assert_batch_answer(reader.next(), large_a)
            self.assertEqual(reader.next()[::2], (200, b"OK"))
            self.assertEqual(reader.next()[::2], (200, b"1"))
            # Then small and large interleaved in one write: grow again after the shrink.
            sequence = [http_request("POST", "/update/counter/tick/1"),
                        http_request("POST", "/updates/", body_b),
                        http_request("GET", "/value/counter/tick"),
                        http_request("POST", "/updates/", body_a),
                        http_request("POST", "/value/", b'{"id":"grow_00000","type":"counter"}'),
                        http_request("GET", "/value/counter/grow_01500")]
            # Sent from another thread: the answers fill the socket buffers before the last request is sent.
            sender = threading.Thread(target=sock.sendall, args=(b"".join(sequence),))
            sender.start()
            self.assertEqual(reader.next()[::2], (200, b"OK"))
            self.assert_batch_answer(reader.next(), [dict(m, delta=3) for m in large_b])
            self.assertEqual(reader.next()[::2], (200, b"2"))
            self.assert_batch_answer(reader.next(), [dict(m, delta=4) for m in large_a])
            status, _, data = reader.next()
            self.assertEqual((status, json.loads(data)), (200, {"id": "grow_00000", "type": "counter", "delta": 4}))
            self.assertEqual(reader.next()[::2], (200, b"4"))
            sender.join()
            self.assertEqual(reader.buffer, b"")


class WriteTimeout(unittest.TestCase):
    def test_a_client_that_stops_reading_is_closed_after_the_write_timeout(self):
        # An answer far larger than both sockets' buffers, to a client that does not read: the
        # server's write waits; -write-timeout 1 ends it long before the 60 s idle timeout.
        with Server("-write-timeout", "1") as s:
            names = ["w%s_%05d" % ("x" * 200, i) for i in range(40000)]
            for first in range(0, len(names), 5000):
                batch = [{"id": n, "type": "gauge", "value": 1} for n in names[first:first + 5000]]
                self.assertEqual(s.post_json("/updates/", batch)[0], 200)
            _, h, _ = s.request("HEAD", "/")
            page_length = int(h["content-length"])
            self.assertGreater(page_length, 8 << 20)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", s.port))
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # The first bytes say the write has begun (rendering 40,000 rows takes seconds
                # under a sanitizer); from then on the client stops reading.
                sock.settimeout(60)
                received = len(sock.recv(4096))
                time.sleep(4)  # past the write timeout (plus the watchdog's 1 s slack)
                sock.settimeout(10)
                try:
                    while True:
                        chunk = sock.recv(1 << 20)
                        if not chunk:
                            break
                        received += len(chunk)
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail("the connection stayed open after %d bytes of %d" % (received, page_length))
                self.assertLess(received, page_length)
            self.assertEqual(s.request("GET", "/ping")[0], 200)


class SnapshotsAndConfiguration(unittest.TestCase):
    def test_updates_with_an_interval_survive_sigkill(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            s = Server("-i", "1", snapshot=path).start()
            try:
                self.assertEqual(s.request("POST", "/update/gauge/periodic/7.5")[0], 200)
                self.assertEqual(s.request("POST", "/update/counter/periodic/3")[0], 200)
                # Written to the write-ahead log before the answer: no snapshot needed.
                s.kill()
            finally:
                s.__exit__(None, None, None)
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("gauge", "periodic"), (200, "7.5"))
                self.assertEqual(s2.value("counter", "periodic"), (200, "3"))

    def test_an_empty_file_path_disables_snapshots(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            for args in (["-f="], ["-f", ""]):
                s = Server("-i", "0", *args, snapshot=path)
                with s:
                    self.assertEqual(s.request("POST", "/update/counter/unsaved/1")[0], 200)
                    self.assertEqual(s.stop(), 0)
                self.assertEqual(os.listdir(d), [], args)
            with Server("-i", "0", "-f=", env={"FILE_STORAGE_PATH": path}) as s:
                self.assertEqual(s.request("POST", "/update/counter/unsaved/1")[0], 200)
            self.assertTrue(os.path.exists(path))  # the environment beats the flag

    def test_every_json_config_key_is_read(self):
        with tempfile.TemporaryDirectory() as d:
            port, snapshot = free_port(), os.path.join(d, "snap.json")
            with open(snapshot, "w") as f:
                json.dump([{"id": "old", "type": "gauge", "value": 1}], f)
            config = {"address": "127.0.0.1:%d" % port, "store_interval": "0s", "store_file": snapshot,
                      "restore": False, "key": "cfgkey", "require_hash": True, "max_batch": 2,
                      "max_uri_bytes": 64, "max_body_bytes": 4096, "access_log": False, "threads": 1,
                      "header_timeout": "1s", "shutdown_grace": 1}
            cfg = os.path.join(d, "config.json")
            with open(cfg, "w") as f:
                json.dump(config, f)
            s = Server(port=port, env={"CONFIG": cfg, "METRICS_LOG_LEVEL": "info"})
            s.args = [SERVER_BIN]  # everything from the file
            with s:
                def signed(obj):
                    body = json.dumps(obj).encode()
                    return body, {"Content-Type": "application/json", "HashSHA256": sign("cfgkey", body)}
                self.assertEqual(s.value("gauge", "old")[0], 404)  # restore: false
                body, h = signed({"id": "cfg", "type": "counter", "delta": 2})
                status, rh, data = s.request("POST", "/update/", body, h)
                self.assertEqual(status, 200)
                self.assertEqual(rh["hashsha256"], sign("cfgkey", data))  # key
                # store_file: the update is in its write-ahead log; store_interval 0: synced first.
                wal = snapshot + ".wal"
                logged = b"".join(open(os.path.join(wal, n), "rb").read() for n in os.listdir(wal))
                self.assertIn(b"cfg", logged)
                self.assertIn("synced before each answer", s.stderr_text())
                self.assertEqual(s.post_json("/update/", {"id": "u", "type": "gauge", "value": 1})[0], 401)
                body, h = signed([{"id": "b%d" % i, "type": "gauge", "value": i} for i in range(3)])
                self.assertEqual(s.request("POST", "/updates/", body, h)[0], 413)  # max_batch
                self.assertEqual(s.request("GET", "/value/gauge/" + "n" * 80)[0], 414)  # max_uri_bytes
                body, h = signed({"id": "x" * 5000, "type": "gauge", "value": 1})
                self.assertEqual(s.request("POST", "/update/", body, h)[0], 413)  # max_body_bytes
                start = time.monotonic()
                out = exchange_until_eof(port, b"GET /ping HTTP/1.1\r\n", timeout=8)  # header_timeout
                self.assertEqual(status_of(out), 408)
                self.assertLess(time.monotonic() - start, 5)
            self.assertNotIn("/update/", s.stderr_text())  # access_log: false

    def test_long_flags_and_http_prefixes_are_accepted(self):
        env = {k: v for k, v in os.environ.items() if k not in ("ADDRESS", "CONFIG", "FILE_STORAGE_PATH")}
        for form in ["--address=127.0.0.1:%d", "-a=http://127.0.0.1:%d", "--address=http://127.0.0.1:%d",
                     "ADDRESS=http://127.0.0.1:%d"]:
            port = free_port()
            if form.startswith("ADDRESS="):
                child = Child("metrics-server", [SERVER_BIN, "-f", ""], dict(env, ADDRESS=form[8:] % port))
            else:
                child = Child("metrics-server", [SERVER_BIN, form % port, "--file-storage-path=", "-r=false"], env)
            try:
                wait_for_port(port, child.proc)
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    c.request("GET", "/ping")
                    self.assertEqual(c.getresponse().status, 200, form)
                finally:
                    c.close()
            finally:
                child.check()


GO_CPU = re.compile(r"^cpu(\d+) ", re.M)


def agent_env(**extra):
    return clean_env(extra)


class HoldingServer:
    """A loopback listener that accepts connections and never answers: counts how many the agent
    holds open at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.done = False
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except socket.timeout:
                continue

    def close(self):
        self.done = True
        self.thread.join()
        for c in self.accepted:
            c.close()
        self.sock.close()


AGENT_REQUIRED = os.environ.get("CI", "") not in ("", "0", "false")


@unittest.skipUnless(os.path.exists(AGENT_BIN) or AGENT_REQUIRED, "metrics-agent not built")
class AgentConfiguration(unittest.TestCase):
    def test_rate_limit_is_the_number_of_concurrent_requests(self):
        for limit in (1, 3):
            holder = HoldingServer()
            try:
                agent = Agent(holder.port, "-r", "1", "-l", str(limit), "-request-timeout", "60s",
                              "-shutdown-timeout", "1s")
                try:
                    # Reports pile up every second; only `limit` senders hold a connection each.
                    self.assertTrue(wait_until(lambda: len(holder.accepted) >= limit, timeout=15))
                    time.sleep(limit + 2)
                    self.assertEqual(len(holder.accepted), limit)
                finally:
                    agent.close()
            finally:
                holder.close()

    def test_config_file_supplies_every_setting(self):
        with Server() as s, tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "agent.json")
            with open(cfg, "w") as f:
                json.dump({"address": "http://127.0.0.1:%d" % s.port, "poll_interval": "1s", "report_interval": 1,
                           "rate_limit": 2, "key": "akey", "queue_size": 4, "request_timeout": "5s"}, f)
            child = Child("metrics-agent", [AGENT_BIN, "-c", cfg], agent_env())
            try:
                self.assertTrue(wait_until(lambda: counter(s, "PollCount") is not None))
            finally:
                child.check()
        # The key from the file signs the reports: a server with another key refuses them.
        with Server("-k", "other", env={"METRICS_LOG_LEVEL": "info"}) as s, tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "agent.json")
            with open(cfg, "w") as f:
                json.dump({"address": "127.0.0.1:%d" % s.port, "poll_interval": 1, "report_interval": 1,
                           "key": "akey"}, f)
            child = Child("metrics-agent", [AGENT_BIN], agent_env(CONFIG=cfg))
            try:
                self.assertTrue(wait_until(lambda: "POST /updates/ 400" in s.stderr_text()))
                self.assertIsNone(counter(s, "PollCount"))
            finally:
                child.check()

    def test_environment_beats_flags(self):
        with Server() as s:
            dead = free_port()
            child = Child("metrics-agent", [AGENT_BIN, "-a", "127.0.0.1:%d" % dead, "-p", "30", "-r", "30"],
                          agent_env(ADDRESS="127.0.0.1:%d" % s.port, POLL_INTERVAL="1", REPORT_INTERVAL="1",
                                    RATE_LIMIT="2"))
            try:
                self.assertTrue(wait_until(lambda: (counter(s, "PollCount") or 0) >= 2))
            finally:
                child.check()

    def test_usage_errors_exit_2_with_one_line(self):
        for args, env in [(["-bogus"], {}), (["-l", "0"], {}), (["-l", "65"], {}), (["-p", "abc"], {}),
                          (["-a", "nohost"], {}), (["-a", "127.0.0.1:0"], {}), ([], {"RATE_LIMIT": "x"}),
                          ([], {"REPORT_INTERVAL": "-1"})]:
            r = subprocess.run([AGENT_BIN, *args], env=agent_env(**env), capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 2, (args, env, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, (args, env, r.stderr))

    def test_sigquit_sends_what_is_pending_and_exits_0(self):
        with Server() as s:
            agent = Agent(s.port, "-r", "60")
            time.sleep(2.5)  # a few polls, no report due yet
            self.assertIsNone(counter(s, "PollCount"))
            self.assertEqual(agent.stop(signal.SIGQUIT), 0)
            self.assertGreaterEqual(counter(s, "PollCount"), 2)

    def test_http_prefixed_address(self):
        with Server() as s:
            with Agent(s.port, address="http://127.0.0.1:%d" % s.port):
                self.assertTrue(wait_until(lambda: counter(s, "PollCount") is not None))

    def test_every_cpu_has_its_utilization_gauge(self):
        with open("/proc/stat") as f:
            cpus = len(GO_CPU.findall(f.read()))
        self.assertGreater(cpus, 0)
        names = ["CPUutilization%d" % i for i in range(1, cpus + 1)]
        with Server() as s, Agent(s.port):
            self.assertTrue(wait_until(lambda: all(gauge(s, n) is not None for n in names)),
                            [n for n in names if gauge(s, n) is None])
            for n in names:
                self.assertTrue(0 <= gauge(s, n) <= 100, (n, gauge(s, n)))
            self.assertIsNone(gauge(s, "CPUutilization%d" % (cpus + 1)))
            self.assertIsNone(gauge(s, "CPUutilization0"))


if __name__ == "__main__":
    unittest.main()
