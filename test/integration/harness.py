"""Starts the real binaries on loopback with free ports and talks to them over real sockets."""

import gzip
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("METRICS_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SERVER_BIN = os.path.join(BUILD_DIR, "src", "server", "metrics-server")
AGENT_BIN = os.path.join(BUILD_DIR, "src", "agent", "metrics-agent")
START_TIMEOUT = 10.0


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
        self.env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
        self.env.setdefault("METRICS_LOG_LEVEL", "warn")
        self.env.update(env or {})
        self.proc = None
        self.wait = wait

    def start(self):
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if self.wait:
            wait_for_port(self.port, self.proc)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.proc.returncode

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            if self.proc.stderr:
                self.proc.stderr.close()
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


ENV_KEYS = {
    "ADDRESS", "STORE_INTERVAL", "FILE_STORAGE_PATH", "RESTORE", "DATABASE_DSN", "KEY", "CRYPTO_KEY",
    "TRUSTED_SUBNET", "AUDIT_FILE", "AUDIT_URL", "CONFIG", "POLL_INTERVAL", "REPORT_INTERVAL", "RATE_LIMIT",
}

__all__ = ["Server", "free_port", "wait_for_port", "sign", "raw_exchange", "gzip", "json", "unittest",
           "SERVER_BIN", "AGENT_BIN", "time", "signal", "subprocess", "os", "tempfile"]
