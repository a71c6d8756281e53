"""Trusted subnet, audit trail, sealed-box encryption and metrics-keygen with the real binaries."""

import base64
import ctypes
import ctypes.util
import http.server
import socket
import stat
import threading

from harness import *  # noqa: F401,F403

KEYGEN_BIN = os.path.join(os.path.dirname(SERVER_BIN), "..", "keygen", "metrics-keygen")
UPDATE = {"Content-Type": "application/json"}


def run_server_to_exit(*args, timeout=10):
    """Starts a server that must refuse to start: (exit status, stderr text)."""
    p = subprocess.run([SERVER_BIN, "-a", "127.0.0.1:%d" % free_port(), "-f", "", *args], env=clean_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stderr.decode()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Agent:
    """A metrics-agent reporting every second to 127.0.0.1:port."""

    def __init__(self, port, *args):
        self.proc = subprocess.Popen([AGENT_BIN, "-a", "127.0.0.1:%d" % port, "-p", "1", "-r", "1", *args],
                                     env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self.proc.stderr.close()


# ---------------------------------------------------------------------------------------------
# Trusted subnet

class TrustedSubnet(ServerTestCase):
    server_args = ("-t", "127.0.0.0/8")

    def post(self, headers):
        return self.server.request("POST", "/update/counter/subnet/1", headers=headers)[0]

    def test_inside_is_served_outside_missing_and_malformed_are_403(self):
        self.assertEqual(self.post({"X-Real-IP": "127.0.0.9"}), 200)
        self.assertEqual(self.post({"X-Real-IP": "::ffff:127.0.0.9"}), 200)
        self.assertEqual(self.post({"X-Real-IP": "10.0.0.1"}), 403)
        self.assertEqual(self.post({}), 403)
        for bad in ["127.0.0", "127.0.0.1:80", "localhost", "127.0.0.1, 10.0.0.1", "::1%lo"]:
            self.assertEqual(self.post({"X-Real-IP": bad}), 403, bad)

    def test_every_endpoint_is_guarded(self):
        s = self.server
        for method, path in [("GET", "/"), ("GET", "/value/counter/subnet"), ("GET", "/ping"), ("GET", "/metrics"),
                             ("POST", "/updates/"), ("GET", "/nowhere")]:
            self.assertEqual(s.request(method, path, body=b"[]" if method == "POST" else None,
                                       headers=UPDATE if method == "POST" else {})[0], 403, path)
        self.assertEqual(s.request("GET", "/ping", headers={"X-Real-IP": "127.0.0.1"})[0], 200)

    def test_refused_body_is_not_decoded(self):
        status, _, body = self.server.request("POST", "/update/", body=b"not gzip at all",
                                              headers={"Content-Type": "application/json",
                                                       "Content-Encoding": "gzip", "X-Real-IP": "192.0.2.1"})
        self.assertEqual(status, 403)
        self.assertIn(b"trusted subnet", body)


class TrustedSubnetStartup(unittest.TestCase):
    def test_invalid_cidr_stops_the_server_with_one_line(self):
        for bad in ["10.0.0.0/33", "10.0.0.0", "banana", "::/129"]:
            code, err = run_server_to_exit("-t", bad)
            self.assertEqual(code, 1, bad)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("TRUSTED_SUBNET", err)
            self.assertIn(bad, err)

    def test_the_environment_variable_is_honoured(self):
        port = free_port()
        with Server(env={"TRUSTED_SUBNET": "192.0.2.0/24"}, port=port) as s:
            self.assertEqual(s.request("POST", "/update/gauge/g/1", headers={"X-Real-IP": "127.0.0.1"})[0], 403)
            self.assertEqual(s.request("POST", "/update/gauge/g/1", headers={"X-Real-IP": "192.0.2.200"})[0], 200)

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_subnet_on_an_ipv6_listener(self):
        port = free_port()
        s = Server("-a", "[::1]:%d" % port, "-t", "fd00::/8", port=port, wait=False).start()
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("::1", port), timeout=0.2).close()
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "no IPv6 listener")
                    time.sleep(0.05)

            def post(ip):
                c = http.client.HTTPConnection("::1", port, timeout=10)
                try:
                    c.request("POST", "/update/gauge/v6/1", headers={"X-Real-IP": ip} if ip else {})
                    return c.getresponse().status
                finally:
                    c.close()
            self.assertEqual(post("fd12::1"), 200)
            self.assertEqual(post("fe80::1"), 403)
            self.assertEqual(post("10.0.0.1"), 403)
            self.assertEqual(post(None), 403)
            self.assertEqual(post("fd12::1::2"), 403)
        finally:
            s.__exit__(None, None, None)


@unittest.skipUnless(os.path.exists(AGENT_BIN), "metrics-agent not built")
class AgentRealIp(unittest.TestCase):
    def test_agent_asserts_the_address_of_its_connection(self):
        with Server("-t", "127.0.0.1/32") as inside, Server("-t", "10.0.0.0/8") as outside:
            a, b = Agent(inside.port), Agent(outside.port)
            try:
                self.assertTrue(wait_until(lambda: inside.request(
                    "GET", "/value/counter/PollCount", headers={"X-Real-IP": "127.0.0.1"})[0] == 200))
            finally:
                self.assertEqual(a.stop(), 0)
                b.proc.send_signal(signal.SIGTERM)
                self.assertEqual(b.proc.wait(15), 0)
                refused = b.proc.stderr.read()
                b.proc.stderr.close()
            # The same agent, reporting from 127.0.0.1, is outside 10.0.0.0/8.
            self.assertIn(b"HTTP 403", refused)
            self.assertEqual(outside.request("GET", "/value/counter/PollCount",
                                             headers={"X-Real-IP": "10.0.0.1"})[0], 404)


# ---------------------------------------------------------------------------------------------
# Audit

class Receiver:
    """A loopback HTTP server that records each POST (content type, JSON body) and answers 200."""

    def __init__(self):
        events, lock = [], threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    events.append((self.path, self.headers["Content-Type"], json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.events, self.lock = events, lock
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Silent:
    """Accepts connections and never answers (nor reads)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stopped = False
        self.thread = threading.Thread(target=self.accept, daemon=True)
        self.thread.start()

    def accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.held:
            c.close()


def send_updates(server):
    """Two audited updates, then failures and reads that must not be audited. Returns the
    (before, after) times in Unix seconds."""
    before = int(time.time())
    s = server
    assert s.request("POST", "/update/counter/hits/2", headers={"X-Real-IP": "192.0.2.7"})[0] == 200
    batch = [{"id": 'we"ird\\id', "type": "gauge", "value": 1.5}, {"id": "hits", "type": "counter", "delta": 1},
             {"id": "hits", "type": "counter", "delta": 1}]
    assert s.post_json("/updates/", batch, headers={"X-Real-IP": "not an address"})[0] == 200
    assert s.request("POST", "/update/counter/hits/oops")[0] == 400
    assert s.post_json("/updates/", [{"id": "x", "type": "gauge"}])[0] == 400
    assert s.post_json("/update/", {"id": "y", "type": "nope", "value": 1})[0] == 400
    assert s.request("GET", "/value/counter/hits")[0] == 200
    assert s.post_json("/value/", {"id": "hits", "type": "counter"})[0] == 200
    assert s.request("GET", "/")[0] == 200
    return before, int(time.time())


class AuditTrail(unittest.TestCase):
    def check_events(self, events, before, after):
        self.assertEqual(len(events), 2, events)
        first, second = events
        self.assertEqual(sorted(first), ["ip_address", "metrics", "ts"])
        self.assertEqual(first["metrics"], ["hits"])
        self.assertEqual(first["ip_address"], "192.0.2.7")
        self.assertEqual(second["metrics"], ['we"ird\\id', "hits", "hits"])
        self.assertEqual(second["ip_address"], "127.0.0.1")  # the header was malformed: the peer
        for e in events:
            self.assertIsInstance(e["ts"], int)
            self.assertTrue(before <= e["ts"] <= after, (before, e["ts"], after))

    def test_file_gets_one_json_line_per_successful_update(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "audit.log")
            with Server("-audit-file", path) as s:
                before, after = send_updates(s)
            with open(path) as f:
                lines = f.read().splitlines()
            self.check_events([json.loads(line) for line in lines], before, after)

    def test_url_gets_one_json_post_per_successful_update(self):
        receiver = Receiver()
        try:
            with Server("-audit-url", "http://127.0.0.1:%d/audit" % receiver.port) as s:
                before, after = send_updates(s)
                self.assertTrue(wait_until(lambda: len(receiver.snapshot()) >= 2, timeout=10))
            events = receiver.snapshot()  # shutdown flushed: nothing more arrives
            self.assertEqual({(path, ctype) for path, ctype, _ in events}, {("/audit", "application/json")})
            self.check_events([e for _, _, e in events], before, after)
        finally:
            receiver.close()

    def test_both_sinks_get_every_event(self):
        receiver = Receiver()
        try:
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "audit.log")
                env = {"AUDIT_FILE": path, "AUDIT_URL": "http://127.0.0.1:%d/" % receiver.port}
                with Server(env=env) as s:
                    for i in range(20):
                        self.assertEqual(s.request("POST", "/update/gauge/g%d/%d" % (i, i))[0], 200)
                with open(path) as f:
                    in_file = [json.loads(line)["metrics"] for line in f]
            in_url = [e["metrics"] for _, _, e in receiver.snapshot()]
            expected = [["g%d" % i] for i in range(20)]
            self.assertEqual(in_file, expected)
            self.assertEqual(in_url, expected)  # one sink coroutine, one connection: in order
        finally:
            receiver.close()

    def test_a_receiver_that_never_answers_does_not_slow_updates(self):
        def timed(server, n=150):
            conn = server.conn()
            try:
                start = time.monotonic()
                for i in range(n):
                    self.assertEqual(server.request("POST", "/update/counter/c/1", conn=conn)[0], 200)
                return time.monotonic() - start
            finally:
                conn.close()
        silent = Silent()
        try:
            with Server() as plain:
                baseline = timed(plain)
            with Server("-audit-url", "http://127.0.0.1:%d/" % silent.port, "--audit-timeout", "30",
                        "--shutdown-grace", "1") as audited:
                slow_sink = timed(audited)
                started = time.monotonic()
            # The stop above waited for the grace, not for the 30 s timeout of the stuck POST.
            self.assertLess(time.monotonic() - started, 10)
            self.assertGreater(len(silent.held), 0)  # the sink did connect
            # Generous: what matters is no wait per request on the sink (that would be 30 s).
            self.assertLess(slow_sink, baseline * 5 + 1.0, (slow_sink, baseline))
        finally:
            silent.close()

    def test_sighup_reopens_the_file_for_rotation(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "audit.log")
            rotated = path + ".1"
            with Server("-audit-file", path) as s:
                self.assertEqual(s.request("POST", "/update/gauge/before/1")[0], 200)
                self.assertTrue(wait_until(lambda: os.path.getsize(path) > 0, timeout=10))
                os.rename(path, rotated)
                s.proc.send_signal(signal.SIGHUP)
                self.assertTrue(wait_until(lambda: os.path.exists(path), timeout=10))
                self.assertEqual(s.request("POST", "/update/gauge/after/1")[0], 200)
                self.assertIsNone(s.proc.poll())  # SIGHUP does not stop the server
            with open(rotated) as f:
                self.assertEqual([json.loads(line)["metrics"] for line in f], [["before"]])
            with open(path) as f:
                self.assertEqual([json.loads(line)["metrics"] for line in f], [["after"]])
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o7, 0)  # not world-readable

    def test_unusable_sinks_stop_the_server_at_start(self):
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "target.log")
            link = os.path.join(d, "link.log")
            os.symlink(target, link)
            fifo = os.path.join(d, "fifo")
            os.mkfifo(fifo)
            for args, what in [(["-audit-file", d], d), (["-audit-file", link], link), (["-audit-file", fifo], fifo),
                               (["-audit-file", os.path.join(d, "no", "such")], "no/such"),
                               (["-audit-url", "https://127.0.0.1/"], "AUDIT_URL"),
                               (["-audit-url", "127.0.0.1:80"], "AUDIT_URL")]:
                code, err = run_server_to_exit(*args)
                self.assertEqual(code, 1, (args, err))
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(what, err)
            self.assertFalse(os.path.exists(target))


# ---------------------------------------------------------------------------------------------
# Keys and encryption

def keygen(*args, umask=None):
    def preexec():
        if umask is not None:
            os.umask(umask)
    return subprocess.run([KEYGEN_BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10,
                          preexec_fn=preexec)


def read(path):
    with open(path) as f:
        return f.read()


@unittest.skipUnless(os.path.exists(KEYGEN_BIN), "metrics-keygen not built")
class Keygen(unittest.TestCase):
    def test_directory_mode_writes_a_pair_with_fixed_modes(self):
        for umask in (0o000, 0o077, 0o022):
            with tempfile.TemporaryDirectory() as d:
                p = keygen(d, umask=umask)
                self.assertEqual(p.returncode, 0, p.stderr)
                priv, pub = os.path.join(d, "private.key"), os.path.join(d, "public.key")
                self.assertEqual(stat.S_IMODE(os.stat(priv).st_mode), 0o600)
                self.assertEqual(stat.S_IMODE(os.stat(pub).st_mode), 0o644)
                self.assertRegex(read(priv), r"^metrics-x25519-private-key [A-Za-z0-9+/]{43}=\n$")
                self.assertRegex(read(pub), r"^metrics-x25519-public-key [A-Za-z0-9+/]{43}=\n$")
                self.assertEqual(sorted(os.listdir(d)), ["private.key", "public.key"])

    def test_existing_keys_are_kept_unless_forced(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(keygen(d).returncode, 0)
            first = read(os.path.join(d, "private.key")), read(os.path.join(d, "public.key"))
            p = keygen(d)
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"exists", p.stderr)
            self.assertIn(b"--force", p.stderr)
            self.assertEqual((read(os.path.join(d, "private.key")), read(os.path.join(d, "public.key"))), first)
            self.assertEqual(keygen("--force", d).returncode, 0)
            self.assertNotEqual(read(os.path.join(d, "private.key")), first[0])
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, "private.key")).st_mode), 0o600)

    def test_named_files_mode_and_usage_errors(self):
        with tempfile.TemporaryDirectory() as d:
            priv, pub = os.path.join(d, "server.key"), os.path.join(d, "agent.pub")
            self.assertEqual(keygen("--private", priv, "--public=" + pub).returncode, 0)
            self.assertTrue(read(priv).startswith("metrics-x25519-private-key "))
            self.assertTrue(read(pub).startswith("metrics-x25519-public-key "))
            for args in [[], ["--private", priv], [d, "--public", pub], ["--bogus", d], [d, d]]:
                self.assertEqual(keygen(*args).returncode, 2, args)
        h = keygen("--help")
        self.assertEqual(h.returncode, 0)
        for word in [b"--force", b"private.key", b"public.key", b"0600"]:
            self.assertIn(word, h.stdout)

    def test_wrong_or_missing_key_files_stop_the_binaries(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(keygen(d).returncode, 0)
            priv, pub = os.path.join(d, "private.key"), os.path.join(d, "public.key")
            junk = os.path.join(d, "junk.key")
            with open(junk, "w") as f:
                f.write("-----BEGIN RSA PRIVATE KEY-----\n")
            for path, why in [(pub, "holds a public key"), (junk, "malformed"), (os.path.join(d, "none"), "none"),
                              (d, "not a regular file")]:
                code, err = run_server_to_exit("-crypto-key", path)
                self.assertEqual(code, 1, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(path, err)
                self.assertIn(why, err)
            if os.path.exists(AGENT_BIN):
                p = subprocess.run([AGENT_BIN, "-a", "127.0.0.1:1", "-crypto-key", priv], env=clean_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
                self.assertEqual(p.returncode, 1)
                self.assertIn(b"holds a private key", p.stderr)


def load_sodium():
    name = ctypes.util.find_library("sodium")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    return lib if lib.sodium_init() >= 0 else None


SODIUM = load_sodium()


def seal(public_key_file, plain):
    """crypto_box_seal through libsodium, as the agent does."""
    key = base64.b64decode(read(public_key_file).split()[1])
    out = ctypes.create_string_buffer(len(plain) + 48)
    assert SODIUM.crypto_box_seal(out, plain, ctypes.c_ulonglong(len(plain)), key) == 0
    return out.raw


@unittest.skipUnless(os.path.exists(KEYGEN_BIN), "metrics-keygen not built")
class Encryption(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.assertEqual(keygen(self.dir.name).returncode, 0)
        self.private = os.path.join(self.dir.name, "private.key")
        self.public = os.path.join(self.dir.name, "public.key")

    def tearDown(self):
        self.dir.cleanup()

    @unittest.skipUnless(os.path.exists(AGENT_BIN), "metrics-agent not built")
    def test_an_encrypting_agent_reaches_an_encrypting_server(self):
        with Server("-crypto-key", self.private, "-k", "shared", "--require-hash") as s:
            agent = Agent(s.port, "-crypto-key", self.public, "-k", "shared")
            try:
                self.assertTrue(wait_until(lambda: s.request("GET", "/value/counter/PollCount")[0] == 200))
                self.assertEqual(s.request("GET", "/value/gauge/RandomValue")[0], 200)
            finally:
                self.assertEqual(agent.stop(), 0)

    @unittest.skipUnless(os.path.exists(AGENT_BIN), "metrics-agent not built")
    def test_the_agent_sends_sealed_signed_bytes(self):
        receiver_bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver_bodies.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        agent = Agent(httpd.server_address[1], "-crypto-key", self.public, "-k", "shared")
        try:
            self.assertTrue(wait_until(lambda: len(receiver_bodies) > 0))
        finally:
            agent.stop()
            httpd.shutdown()
            httpd.server_close()
        headers, body = receiver_bodies[0]
        self.assertEqual(headers["X-Encrypted"], "sealed-box")
        self.assertEqual(headers["Content-Encoding"], "gzip")
        self.assertEqual(headers["X-Real-IP"], "127.0.0.1")
        self.assertEqual(headers["HashSHA256"], sign("shared", body))  # over the sealed bytes
        self.assertNotEqual(body[:2], b"\x1f\x8b")  # not readable gzip on the wire

    @unittest.skipUnless(SODIUM is not None, "libsodium not loadable from Python")
    def test_sealed_tampered_and_plain_requests(self):
        with Server("-crypto-key", self.private, "-k", "k") as s:
            def post(body, encrypted):
                h = {"Content-Type": "application/json", "Content-Encoding": "gzip", "HashSHA256": sign("k", body)}
                if encrypted:
                    h["X-Encrypted"] = "sealed-box"
                return s.request("POST", "/updates/", body=body, headers=h)[0]
            box = seal(self.public, gzip.compress(b'[{"id":"sealed","type":"counter","delta":5}]'))
            self.assertEqual(post(box, True), 200)
            self.assertEqual(s.value("counter", "sealed"), (200, "5"))
            tampered = bytearray(seal(self.public, gzip.compress(b'[{"id":"tampered","type":"counter","delta":1}]')))
            tampered[60] ^= 1
            self.assertEqual(post(bytes(tampered), True), 400)
            self.assertEqual(s.value("counter", "tampered")[0], 404)
            self.assertEqual(post(box[:40], True), 400)
            self.assertEqual(post(gzip.compress(b'[{"id":"plain","type":"counter","delta":2}]'), False), 200)
            self.assertEqual(s.value("counter", "plain"), (200, "2"))
            self.assertEqual(s.request("POST", "/update/counter/url/1")[0], 200)


if __name__ == "__main__":
    unittest.main()
