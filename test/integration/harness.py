"""Starts the real binaries on loopback with free ports and talks to them over real sockets."""

import atexit
import gzip
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("METRICS_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SERVER_BIN = os.path.join(BUILD_DIR, "src", "server", "metrics-server")
AGENT_BIN = os.path.join(BUILD_DIR, "src", "agent", "metrics-agent")
# Sanitized builds start several times slower: METRICS_START_TIMEOUT raises the wait.
START_TIMEOUT = float(os.environ.get("METRICS_START_TIMEOUT", "10"))
STOP_TIMEOUT = float(os.environ.get("METRICS_STOP_TIMEOUT", "15"))
# The sanitizer the binaries under test were built with ("address", "thread"; empty: none), set
# by tools/test.sh. Memory figures (RSS) of a sanitized process measure the sanitizer's shadow
# memory and quarantine, not ours: tests that bound RSS skip under one.
SANITIZER = os.environ.get("METRICS_SANITIZER", "")

# Every child's stderr goes to a file here (a pipe nobody reads loses it and blocks a chatty
# child); run.py prints the files of a failed test's children and removes the folder when all pass.
LOG_DIR = tempfile.mkdtemp(prefix="metrics-integration.")
atexit.register(lambda: os.environ.get("METRICS_KEEP_LOGS") or shutil.rmtree(LOG_DIR, ignore_errors=True))


class Child:
    """A daemon a test started: its stderr file and the exit status it must end with.

    Teardown (Server.__exit__, Agent.close and run.py after each test) fails the test when the
    child did not end with `expected_status`: 0 unless the test says otherwise
    (`expect_status`, or `kill()`, which expects SIGKILL's -9).
    """

    started = []  # every Child of this run, in start order (run.py reads it)
    _count = 0

    def __init__(self, name, argv, env, **popen):
        Child._count += 1
        self.name = name
        self.argv = argv
        self.stderr_path = os.path.join(LOG_DIR, "%03d-%s.stderr" % (Child._count, name))
        self.expected_status = 0
        self.checked = False
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err, **popen)
        Child.started.append(self)

    def expect_status(self, status):
        """Says the test means this child to end with `status` (a negative signal number or exit code)."""
        self.expected_status = status

    def signal(self, sig, timeout=None):
        """Sends `sig` unless it has ended; waits for the end and returns the status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout or STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not end within %s s of signal %d and was killed\n%s"
                                 % (self.name, timeout or STOP_TIMEOUT, sig, self.stderr_tail()))

    def kill(self):
        self.expect_status(-signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()

    def check(self):
        """Stops the child if it runs (SIGTERM) and raises AssertionError unless it ended as expected."""
        if self.checked:
            return
        self.checked = True
        status = self.signal(signal.SIGTERM)
        if status != self.expected_status:
            raise AssertionError("%s ended with status %s, expected %s\n%s"
                                 % (self.name, status, self.expected_status, self.stderr_tail()))

    def leave(self, failed):
        """The end of a `with`: after a failure in the body, shows the child's stderr and stops
        it without judging its status (the failure is the news); otherwise check()s it."""
        if failed:
            print(self.stderr_tail(), file=sys.stderr)
            self.signal(signal.SIGTERM)
            self.checked = True
        else:
            self.check()

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr_tail(self, limit=4000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        text = data[-limit:].decode(errors="replace")
        return "--- stderr of %s (%s) ---\n%s" % (self.name, self.stderr_path, text)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited early with status %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("port %d did not open" % port)


def sign(key, body):
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class Server:
    """A metrics-server process on a free loopback port. Use as a context manager."""

    def __init__(self, *args, env=None, port=None, snapshot=None, wait=True):
        self.port = port or free_port()
        self.tmp = tempfile.TemporaryDirectory()
        self.snapshot = snapshot or os.path.join(self.tmp.name, "metrics.json")
        self.args = [SERVER_BIN, "-a", "127.0.0.1:%d" % self.port, "-f", self.snapshot, *args]
        self.env = clean_env(env)
        self.proc = None
        self.wait = wait

    def start(self):
        self.child = Child("metrics-server", self.args, self.env)
        self.proc = self.child.proc
        if self.wait:
            try:
                wait_for_port(self.port, self.proc)
            except (RuntimeError, TimeoutError) as e:
                raise RuntimeError("%s\n%s" % (e, self.child.stderr_tail())) from None
        return self

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends `sig` and returns the exit status (teardown still checks it against the expected one)."""
        if self.proc is None:
            return None
        return self.child.signal(sig, timeout)

    def kill(self):
        """SIGKILL, which the test means: teardown expects status -9."""
        self.child.kill()

    def expect_status(self, status):
        self.child.expect_status(status)

    def stderr_text(self):
        """What the daemon wrote to stderr so far (its log)."""
        return self.child.stderr_text()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            if self.proc is not None:
                self.child.leave(bool(exc) and exc[0] is not None)
        finally:
            self.tmp.cleanup()

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, headers dict lower-cased, body bytes)."""
        own = conn is None
        c = conn or self.conn()
        try:
            if isinstance(body, str):
                body = body.encode()
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def post_json(self, path, obj, headers=None, conn=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, json.dumps(obj), h, conn)

    def value(self, kind, name):
        status, _, body = self.request("GET", "/value/%s/%s" % (kind, name))
        return status, body.decode()


def raw_exchange(port, data, read_until_close=True, timeout=5):
    """Sends raw bytes and returns everything the server answers until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
                if not read_until_close:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def exchange_until_eof(port, data, timeout=5):
    """Sends raw bytes and returns everything the server answers; fails unless the server closes
    the connection (EOF or reset) within `timeout` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                return b"".join(chunks)
            except socket.timeout:
                raise AssertionError("the server kept the connection open for %s s after answering %r"
                                     % (timeout, b"".join(chunks)[:200])) from None
            if not b:
                return b"".join(chunks)
            chunks.append(b)


class Agent:
    """A metrics-agent process reporting to 127.0.0.1:`port` (poll 1 s, report 2 s unless `args`
    say otherwise). `close()` (or leaving a `with`) stops it and checks that it exited 0."""

    def __init__(self, port, *args, env=None, address=None):
        e = clean_env(env)
        argv = [AGENT_BIN]
        if address is not False:
            argv += ["-a", address or "127.0.0.1:%d" % port]
        argv += ["-p", "1", "-r", "2", *args]
        self.child = Child("metrics-agent", argv, e)
        self.proc = self.child.proc

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends `sig` and returns the exit status (run.py still checks it after the test)."""
        return self.child.signal(sig, timeout)

    def expect_status(self, status):
        self.child.expect_status(status)

    def close(self):
        self.child.check()

    def stderr_text(self):
        return self.child.stderr_text()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.child.leave(bool(exc) and exc[0] is not None)


def gauge(server, name):
    """A gauge's value through POST /value/, or None when the server does not know it."""
    status, _, body = server.post_json("/value/", {"id": name, "type": "gauge"})
    return json.loads(body)["value"] if status == 200 else None


def counter(server, name):
    """A counter's total through POST /value/, or None when the server does not know it."""
    status, _, body = server.post_json("/value/", {"id": name, "type": "counter"})
    return json.loads(body)["delta"] if status == 200 else None


def wait_until(predicate, timeout=15, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


# Every variable the daemons read (env beats flags): none may leak in from the caller's shell.
ENV_KEYS = {
    "ACCESS_LOG", "ADDRESS", "AUDIT_FILE", "AUDIT_QUEUE", "AUDIT_TIMEOUT", "AUDIT_URL", "BODY_TIMEOUT", "CONFIG",
    "CRYPTO_KEY", "DATABASE_DSN", "DATABASE_POOL", "DATABASE_QUEUE", "DATABASE_TIMEOUT", "FILE_STORAGE_PATH",
    "HEADER_TIMEOUT", "IDLE_TIMEOUT", "KEY", "LOG_FORMAT", "LOG_LEVEL", "MAX_BATCH", "MAX_BODY_BYTES", "MAX_CONNECTIONS", "MAX_DECODED_BYTES",
    "MAX_HEADER_BYTES", "MAX_METRICS", "MAX_URI_BYTES", "METRIC_TTL", "POLL_INTERVAL", "QUEUE_SIZE", "RATE_LIMIT", "REPORT_INTERVAL",
    "REQUEST_TIMEOUT", "REQUIRE_HASH", "RESTORE", "SHUTDOWN_GRACE", "SHUTDOWN_TIMEOUT", "STORE_INTERVAL",
    "THREADS", "TRUSTED_SUBNET", "WRITE_TIMEOUT",
}


def clean_env(extra=None):
    """The caller's environment without the daemons' variables, logging warnings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.setdefault("METRICS_LOG_LEVEL", "warn")
    env.update(extra or {})
    return env


class ServerTestCase(unittest.TestCase):
    """Test cases that share one daemon, started with `server_args`, for the whole class."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.server_args).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

__all__ = ["Server", "ServerTestCase", "Agent", "Child", "clean_env", "ENV_KEYS", "gauge", "counter", "free_port", "wait_for_port", "wait_until", "sign", "raw_exchange",
           "exchange_until_eof", "gzip", "json", "unittest", "START_TIMEOUT", "STOP_TIMEOUT", "SANITIZER",
           "SERVER_BIN", "AGENT_BIN", "time", "signal", "subprocess", "os", "tempfile"]
