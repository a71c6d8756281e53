"""Injected faults (issue 21): a PostgreSQL table lock and a stopped PostgreSQL under load, and
misbehaving HTTP servers (slow drip, endless body, Retry-After, no answer) against the agent.

The PostgreSQL cases need the cluster tools/test.sh starts (METRICS_TEST_DSN, METRICS_TEST_PGDIR)
and psql. Timeouts are shortened by flags so that each case runs in seconds.
"""

import glob
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

from harness import AGENT_BIN, SANITIZER, Server, clean_env

DSN = os.environ.get("METRICS_TEST_DSN", "")
PGDIR = os.environ.get("METRICS_TEST_PGDIR", "")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PSQL = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None)


def unique(prefix):
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def with_application_name(dsn, name):
    if "://" in dsn:
        return dsn + ("&" if "?" in dsn else "?") + "application_name=" + name
    return dsn + " application_name=" + name


def psql(sql, timeout=30):
    out = subprocess.run([PSQL, DSN, "-XAtq", "-c", sql], capture_output=True, timeout=timeout, check=True)
    return out.stdout.decode().strip()


def backends(application_name):
    return int(psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'" % application_name))


def timed_request(port, method, path, timeout=30):
    """(status, Retry-After or None, body, seconds taken); status 0 on a transport error."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        body = r.read()
        return r.status, r.getheader("Retry-After"), body, time.monotonic() - start
    except (OSError, http.client.HTTPException):
        return 0, None, b"", time.monotonic() - start
    finally:
        conn.close()


class Sampler(threading.Thread):
    """Calls `probe` every `period` seconds until stopped; keeps the largest value seen."""

    def __init__(self, probe, period=0.1):
        super().__init__(daemon=True)
        self.probe, self.period = probe, period
        self.peak = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.probe())
            self.samples += 1
            self.done.wait(self.period)

    def stop(self):
        self.done.set()
        self.join(30)
        return self.peak


@unittest.skipUnless(DSN and PGDIR and PSQL, "METRICS_TEST_DSN, METRICS_TEST_PGDIR or psql missing (tools/test.sh)")
class PostgresFaults(unittest.TestCase):
    POOL = 2
    DEADLINE = 3.0  # --request-timeout
    # Statement deadline, then up to 1 s for the cancelled statement's answer, plus scheduling.
    MARGIN = 2.0

    def server(self, app):
        return Server("-d", with_application_name(DSN, app), "--database-pool", str(self.POOL),
                      "--database-timeout", "1", "--request-timeout", str(int(self.DEADLINE)),
                      "--database-queue", "4", "--access-log=false")

    def test_a_long_table_lock_costs_no_extra_backend_and_no_phantom_update(self):
        app, c = unique("faults"), unique("locked")
        answers, pings = [], []
        with self.server(app) as s:
            self.assertEqual(s.request("POST", "/update/counter/%s/1" % c)[0], 200)
            # Longer than the statement timeout (1 s) and than the request deadline (3 s).
            lock = subprocess.Popen([PSQL, DSN, "-Xq", "-c",
                                     "BEGIN; LOCK TABLE counters IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(7); COMMIT;"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                granted = "SELECT count(*) FROM pg_locks WHERE relation = 'counters'::regclass AND granted " \
                          "AND mode = 'AccessExclusiveLock'"
                deadline = time.monotonic() + 10
                while psql(granted) != "1":
                    self.assertLess(time.monotonic(), deadline, "the lock was never taken")
                    time.sleep(0.05)
                sampler = Sampler(lambda: backends(app))
                sampler.start()
                stop = threading.Event()

                def update():
                    while not stop.is_set():
                        answers.append(timed_request(s.port, "POST", "/update/counter/%s/1" % c))
                        if answers[-1][0] != 200:
                            time.sleep(0.1)  # a client backing off, so that the lock test is no CPU test

                def ping():
                    while not stop.is_set():
                        pings.append(timed_request(s.port, "GET", "/ping"))
                        time.sleep(0.02)

                threads = [threading.Thread(target=update) for _ in range(8)] + [threading.Thread(target=ping)]
                for t in threads:
                    t.start()
                lock.wait(30)
                time.sleep(1)  # a few answers after the lock, too
                stop.set()
                for t in threads:
                    t.join(60)
                peak = sampler.stop()
            finally:
                if lock.poll() is None:
                    lock.kill()
                    lock.wait()
            ok = sum(1 for a in answers if a[0] == 200)
            print("\n  lock 7 s, pool %d: peak backends %d (%d samples); %d answers: %d x 200, %s; "
                  "slowest %.2f s; %d pings, slowest %.2f s"
                  % (self.POOL, peak, sampler.samples, len(answers), ok,
                     sorted({a[0] for a in answers}), max(a[3] for a in answers), len(pings),
                     max(p[3] for p in pings)), file=sys.stderr)
            self.assertLessEqual(peak, self.POOL + 1)
            self.assertGreater(sampler.samples, 10)
            for status, retry_after, body, seconds in answers:
                self.assertIn(status, (200, 503), body)
                self.assertLess(seconds, self.DEADLINE + self.MARGIN)
                if status == 503:
                    self.assertEqual(retry_after, "1")
            self.assertGreater(len(answers) - ok, 0, "the lock blocked nothing")
            self.assertEqual([p[0] for p in pings], [200] * len(pings))
            # Every statement that timed out was cancelled: none ran when the lock went.
            self.assertEqual(s.value("counter", c), (200, str(1 + ok)))
        # Whatever the daemon held is given back when it exits.
        deadline = time.monotonic() + 10
        while backends(app) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(backends(app), 0)

    def test_a_stopped_database_gets_prompt_503s_that_changed_nothing(self):
        app, c = unique("faults"), unique("stopped")
        answers = []
        with self.server(app) as s:
            self.assertEqual(s.request("POST", "/update/counter/%s/1" % c)[0], 200)
            pg = os.path.join(ROOT, "tools", "pg.sh")
            subprocess.run([pg, "stop", PGDIR], check=True, stdout=subprocess.DEVNULL, timeout=60)
            try:
                def update():
                    for _ in range(3):
                        answers.append(timed_request(s.port, "POST", "/update/counter/%s/1" % c))

                threads = [threading.Thread(target=update) for _ in range(16)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(120)
            finally:
                subprocess.run([pg, "start", PGDIR], check=True, stdout=subprocess.DEVNULL, timeout=120)
            print("\n  database stopped, 16 clients x 3: statuses %s, longest wait %.2f s (deadline %.0f s)"
                  % (sorted({a[0] for a in answers}), max(a[3] for a in answers), self.DEADLINE), file=sys.stderr)
            self.assertEqual(len(answers), 48)
            for status, retry_after, body, seconds in answers:
                self.assertEqual(status, 503, body)
                self.assertEqual(retry_after, "1")
                self.assertLess(seconds, self.DEADLINE + self.MARGIN)
            # Back once the database is: the first request may need the retry schedule.
            self.assertEqual(s.request("POST", "/update/counter/%s/1" % c)[0], 200)
            self.assertEqual(s.value("counter", c), (200, "2"))


class ServerOverload(unittest.TestCase):
    def test_the_connection_limit_503_carries_retry_after(self):
        with Server("--max-connections", "1") as s:
            held = socket.create_connection(("127.0.0.1", s.port))
            try:
                time.sleep(0.2)  # accepted and counted
                with socket.create_connection(("127.0.0.1", s.port), timeout=5) as extra:
                    extra.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                    out = b""
                    while True:
                        chunk = extra.recv(4096)
                        if not chunk:
                            break
                        out += chunk
            finally:
                held.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 503 "), out)
        self.assertIn(b"\r\nRetry-After: 1\r\n", out)


class ScriptedServer(threading.Thread):
    """A loopback HTTP server whose answers are scripted: `answer(conn, index, body)` is called for
    every request (index from 0) after its head and Content-Length body are read, and writes
    whatever it likes. Records (arrival time, body) per request and each connection's lifetime."""

    def __init__(self, answer):
        super().__init__(daemon=True)
        self.answer = answer
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests = []          # (monotonic time, body bytes)
        self.connections = []       # seconds from its first request to the client's close
        self.lock = threading.Lock()
        self.done = threading.Event()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(10)
        self.sock.close()

    def run(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        conn.settimeout(0.5)
        buf = b""
        first = None
        try:
            while not self.done.is_set():
                while b"\r\n\r\n" not in buf:
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        if self.done.is_set():
                            return
                        continue
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                now = time.monotonic()
                first = first or now
                with self.lock:
                    index = len(self.requests)
                    self.requests.append((now, body))
                if not self.answer(self, conn, index, body):
                    return
        except OSError:
            pass
        finally:
            if first is not None:
                with self.lock:
                    self.connections.append(time.monotonic() - first)
            conn.close()

    def closed_by_client(self, conn, wait):
        """Waits up to `wait` seconds; True if the client closed (or reset) the connection."""
        try:
            conn.settimeout(wait)
            return conn.recv(1, socket.MSG_PEEK) == b""
        except socket.timeout:
            return False
        except OSError:
            return True


def slow_drip(server, conn, index, body):
    """A valid 200 with Content-Length 1000, one byte a second, until the client goes."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    for _ in range(1000):
        if server.done.is_set() or server.closed_by_client(conn, 1.0):
            return False
        conn.sendall(b" ")
    return False


def endless_chunks(server, conn, index, body):
    """A 200 whose chunked body never ends, as fast as the client reads it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % 65536 + b"[" * 65536 + b"\r\n"
    conn.settimeout(5)
    while not server.done.is_set():
        conn.sendall(chunk)
    return False


def never_answer(server, conn, index, body):
    server.done.wait(60)
    return False


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


class AgentProcess:
    def __init__(self, port, *args):
        env = clean_env({"METRICS_LOG_LEVEL": "info"})
        self.proc = subprocess.Popen([AGENT_BIN, "-a", "127.0.0.1:%d" % port, *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        log = self.proc.stderr.read().decode(errors="replace")
        self.proc.stderr.close()
        return status, log


def wait_for(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@unittest.skipUnless(os.path.exists(AGENT_BIN), "metrics-agent not built")
class AgentFaults(unittest.TestCase):
    def test_a_slow_drip_answer_is_given_up_at_the_request_timeout(self):
        with ScriptedServer(slow_drip) as srv:
            agent = AgentProcess(srv.port, "-p", "1", "-r", "2", "-l", "2", "--request-timeout", "2")
            self.assertTrue(wait_for(lambda: len(srv.connections) >= 4, timeout=30), srv.connections)
            status, log = agent.finish()
        stalls = sorted(srv.connections)
        print("\n  slow drip, --request-timeout 2 -l 2: %d requests in %d connections, longest held %.2f s"
              % (len(srv.requests), len(stalls), stalls[-1]), file=sys.stderr)
        # Each request is abandoned at its 2 s deadline, not after the 1000 s the drip would take.
        for held in stalls:
            self.assertLess(held, 2 + 1.5)
        self.assertNotIn("queue full", log)
        self.assertEqual(status, 0, log)

    @unittest.skipIf(SANITIZER, "RSS under a sanitizer is its shadow memory and quarantine")
    def test_an_endless_answer_costs_bounded_memory(self):
        with ScriptedServer(endless_chunks) as srv:
            agent = AgentProcess(srv.port, "-p", "1", "-r", "1", "-l", "4", "--request-timeout", "5")
            pid = agent.proc.pid
            # Twelve requests: every sender has hit the limit at least three times.
            self.assertTrue(wait_for(lambda: len(srv.connections) >= 12, timeout=40), srv.connections)
            peak_kb, rss_kb = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
            status, log = agent.finish()
        print("\n  endless chunked body, -l 4: %d connections, peak RSS %.1f MiB, RSS %.1f MiB"
              % (len(srv.connections), peak_kb / 1024, rss_kb / 1024), file=sys.stderr)
        # At most 1 MiB of answer per sender (metrics-agent's max_answer_bytes), and the big
        # buffer is freed after each request: a 5 MiB agent stays under 16 MiB.
        self.assertLess(peak_kb, 16 * 1024)
        self.assertEqual(status, 0, log)

    def test_429_and_503_are_retried_after_the_servers_retry_after(self):
        script = [b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 5\r\n\r\nbusy\n",
                  b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 5\r\n\r\nslow\n",
                  b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"]

        def answer(server, conn, index, body):
            conn.sendall(script[min(index, 2)])
            return True

        with ScriptedServer(answer) as srv:
            agent = AgentProcess(srv.port, "-p", "1", "-r", "1", "-l", "1")
            self.assertTrue(wait_for(lambda: len(srv.requests) >= 3, timeout=30))
            status, log = agent.finish()
        (t0, b0), (t1, b1), (t2, b2) = srv.requests[:3]
        print("\n  Retry-After 2 then 1: retries after %.2f s and %.2f s (schedule: 1 s, 3 s)"
              % (t1 - t0, t2 - t1), file=sys.stderr)
        self.assertEqual(b0, b1)  # the same report, retried
        self.assertEqual(b1, b2)
        self.assertGreaterEqual(t1 - t0, 1.9)  # the schedule alone would retry after 1 s
        self.assertGreaterEqual(t2 - t1, 0.9)
        self.assertLess(t2 - t1, 2.5)  # ... and then after 3 s
        self.assertNotIn("rejected", log)
        self.assertEqual(status, 0, log)

    def test_a_second_signal_ends_a_stuck_shutdown_at_once(self):
        for second in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(second=second), ScriptedServer(never_answer) as srv:
                agent = AgentProcess(srv.port, "-p", "1", "-r", "1", "--shutdown-timeout", "20",
                                     "--request-timeout", "30")
                self.assertTrue(wait_for(lambda: len(srv.requests) >= 1, timeout=15))
                agent.proc.send_signal(signal.SIGTERM)
                time.sleep(0.5)  # the first signal's shutdown is under way, waiting for the server
                self.assertIsNone(agent.proc.poll())
                start = time.monotonic()
                status, log = agent.finish(second, timeout=10)
                took = time.monotonic() - start
                print("\n  second signal %d: exit %d after %.2f s" % (second, status, took), file=sys.stderr)
                self.assertEqual(status, 0, log)
                self.assertLess(took, 3)
                self.assertRegex(log, r"abandoning \d+ report\(s\)")


if __name__ == "__main__":
    unittest.main()
