"""The write-ahead log of the real binary: SIGKILL in both durability modes, a full disk, a
read-only directory, and restart from the Go server's snapshot."""

import contextlib
import errno
import http.client
import shutil
import threading

from harness import *  # noqa: F401,F403

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures")


class Writer(threading.Thread):
    """Sends counter updates on its own connection until told to stop or the server dies.

    acked: updates answered 200; in_flight: 1 if a request was sent and no answer came back.
    """

    def __init__(self, server, name, batch=False):
        super().__init__(daemon=True)
        self.server = server
        self.name = name
        self.batch = batch
        self.acked = 0
        self.in_flight = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        try:
            c = self.server.conn(timeout=10)
            while not self.stop.is_set() and self.acked < 5000:
                self.in_flight = 1
                if self.batch:
                    body = json.dumps([{"id": self.name, "type": "counter", "delta": 1},
                                       {"id": self.name + ".g", "type": "gauge", "value": self.acked + 1}])
                    c.request("POST", "/updates/", body=body, headers={"Content-Type": "application/json"})
                else:
                    c.request("POST", "/update/counter/%s/1" % self.name)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    self.errors.append(r.status)
                    self.in_flight = 0
                    return
                self.acked += 1
                self.in_flight = 0
        except (OSError, http.client.HTTPException):
            pass  # the server was killed: in_flight says whether an answer was lost


class SigkillDuringUpdates(unittest.TestCase):
    def check_mode(self, interval):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            s = Server("-i", interval, snapshot=path).start()
            writers = [Writer(s, "w%d" % i, batch=(i % 2 == 1)) for i in range(8)]
            for w in writers:
                w.start()
            self.assertTrue(wait_until(lambda: sum(w.acked for w in writers) >= 400, timeout=60))
            s.kill()
            for w in writers:
                w.join(15)
                self.assertFalse(w.is_alive())
                self.assertEqual(w.errors, [])
            with Server(snapshot=path) as s2:
                for w in writers:
                    total = counter(s2, w.name) or 0
                    # Acknowledged: present; in flight when killed: present or not; never more.
                    self.assertGreaterEqual(total, w.acked, w.name)
                    self.assertLessEqual(total, w.acked + w.in_flight, w.name)
                    if w.batch and total > 0:
                        # A batch is atomic: its gauge is there exactly when its counter is.
                        self.assertEqual(gauge(s2, w.name + ".g"), total, w.name)
            s.tmp.cleanup()

    def test_interval_0_keeps_every_acknowledged_update_and_no_more(self):
        self.check_mode("0")

    def test_interval_1_keeps_every_acknowledged_update_and_no_more(self):
        self.check_mode("1")

    def test_a_killed_server_restarts_from_snapshot_plus_log(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            with Server("-i", "300", snapshot=path) as s:
                s.request("POST", "/update/counter/c/5")
                self.assertEqual(s.stop(), 0)  # a compaction at close: the snapshot holds c
            self.assertIn('"id":"c"', open(path).read())
            s = Server("-i", "300", snapshot=path).start()
            s.request("POST", "/update/counter/c/2")
            s.request("POST", "/update/gauge/g/1.5")
            s.kill()
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("counter", "c"), (200, "7"))
                self.assertEqual(s2.value("gauge", "g"), (200, "1.5"))
            s.tmp.cleanup()


@contextlib.contextmanager
def small_tmpfs(test, size):
    """A tmpfs of `size` mounted on a fresh directory (root only: the test is skipped otherwise)."""
    d = tempfile.mkdtemp(prefix="metrics-tmpfs.")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if mounted.returncode != 0:
        os.rmdir(d)
        print("skipped: cannot mount a tmpfs (%s)" % mounted.stderr.decode().strip())
        test.skipTest("mounting a tmpfs needs root")
    try:
        yield d
    finally:
        subprocess.run(["umount", d])
        os.rmdir(d)


def fill(directory):
    """Fills the file system of `directory` until a write fails with ENOSPC; returns the file."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        for _ in range(1 << 16):
            try:
                f.write(b"\0" * 512)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return path
    raise AssertionError("the file system never filled")


class FullDisk(unittest.TestCase):
    def check_full_disk(self, interval):
        with small_tmpfs(self, "64k") as d:
            path = os.path.join(d, "db.json")
            with Server("-i", interval, snapshot=path) as s:
                c = s.conn()
                self.assertEqual(s.request("POST", "/update/counter/c/1", conn=c)[0], 200)
                filler = fill(d)
                # The segment's last page may still have room: updates go on until it is used up.
                acked = 1
                for _ in range(2000):
                    status = s.request("POST", "/update/counter/c/1", conn=c)[0]
                    if status != 200:
                        self.assertEqual(status, 500)
                        break
                    acked += 1
                else:
                    self.fail("no update failed on a full disk")
                for _ in range(5):
                    self.assertEqual(s.request("POST", "/update/counter/c/1", conn=c)[0], 500)
                    self.assertEqual(s.post_json("/updates/", [{"id": "c", "type": "counter", "delta": 1}],
                                                 conn=c)[0], 500)
                # Nothing of the failed updates was applied; reads keep working.
                self.assertEqual(s.value("counter", "c"), (200, str(acked)))
                self.assertEqual(s.request("GET", "/ping")[0], 500)
                os.unlink(filler)
                self.assertEqual(s.request("POST", "/update/counter/c/1", conn=c)[0], 200)
                self.assertEqual(s.value("counter", "c"), (200, str(acked + 1)))
                self.assertTrue(wait_until(lambda: s.request("GET", "/ping")[0] == 200, timeout=10))
                self.assertEqual(s.stop(), 0)
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("counter", "c"), (200, str(acked + 1)))

    def test_full_disk_with_interval_0_answers_500_and_applies_nothing(self):
        self.check_full_disk("0")

    def test_full_disk_with_interval_1_answers_500_and_applies_nothing(self):
        self.check_full_disk("1")


def run_unprivileged():
    """preexec_fn: the daemon as nobody, so that file permissions bind it (root ignores them)."""
    os.setgid(65534)
    os.setuid(65534)


class ReadOnlyDirectory(unittest.TestCase):
    def test_a_read_only_directory_is_a_clear_startup_error(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o500)
            path = os.path.join(d, "db.json")
            preexec = run_unprivileged if os.geteuid() == 0 else None
            if preexec:
                os.chown(d, 65534, 65534)
            r = subprocess.run([SERVER_BIN, "-a", "127.0.0.1:%d" % free_port(), "-f", path], env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec, timeout=STOP_TIMEOUT)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(path + ".wal", r.stderr.decode())

    def test_a_directory_made_read_only_keeps_acknowledged_updates(self):
        # The log's segment is open: updates stay durable; compaction, which creates files, fails
        # and keeps the log whole until the directory is writable again.
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            data = os.path.join(d, "data")
            os.mkdir(data)
            preexec = run_unprivileged if os.geteuid() == 0 else None
            if preexec:
                os.chown(data, 65534, 65534)
            path = os.path.join(data, "db.json")
            s = Server("-i", "0", snapshot=path)
            s.child = Child("metrics-server", s.args, s.env, preexec_fn=preexec)
            s.proc = s.child.proc
            wait_for_port(s.port, s.proc)
            try:
                self.assertEqual(s.request("POST", "/update/counter/ro/1")[0], 200)
                os.chmod(data, 0o500)
                os.chmod(path + ".wal", 0o500)
                for _ in range(3):
                    self.assertEqual(s.request("POST", "/update/counter/ro/1")[0], 200)
                self.assertEqual(s.value("counter", "ro"), (200, "4"))
                s.kill()
            finally:
                os.chmod(data, 0o700)
                os.chmod(path + ".wal", 0o700)
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("counter", "ro"), (200, "4"))
            s.tmp.cleanup()


class DurableLoadTest(unittest.TestCase):
    def test_a_short_durable_load_test_reports_fsyncs_per_update(self):
        from test_tools import TOOLS, run_tool
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "loadtest.json")
            run = run_tool([os.path.join(TOOLS, "loadtest.sh"), "-d", "1", "-c", "4", "-i", "0", "-m", "20000",
                            "-e", "update_counter", "-o", out],
                           {"PORT": str(free_port()), "TRIVIAL_PORT": str(free_port()), "WARMUP": "0"})
            text = run.stdout.decode(errors="replace")
            self.assertEqual(run.returncode, 0, text)
            self.assertRegex(text, r"fsyncs: [\d,]+ for [\d,]+ updates: [\d.]+ per update")
            with open(out) as f:
                report = json.load(f)
            self.assertEqual(report["interval"], 0)
            self.assertEqual(report["stored_metrics"], 20000)
            ours = next(r for r in report["results"] if r["server"] == "ours")
            self.assertGreater(ours["requests"], 0)
            self.assertEqual(ours["non_2xx"], 0)
            # Every acknowledged update waited for a sync, and syncs are shared, never more than one each.
            self.assertGreater(report["fsyncs"], 0)
            self.assertLessEqual(report["fsyncs"], ours["requests"] + 100)


class GoSnapshot(unittest.TestCase):
    def test_restart_from_a_go_server_snapshot(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            shutil.copy(os.path.join(FIXTURES, "go_snapshot.json"), path)
            with Server("-i", "300", snapshot=path) as s:
                self.assertEqual(s.value("gauge", "Alloc"), (200, "524288.5"))
                self.assertEqual(s.value("counter", "PollCount"), (200, "42"))
                self.assertEqual(s.value("gauge", "RandomValue"), (200, "0.123456789"))
                s.request("POST", "/update/counter/PollCount/1")
                self.assertEqual(s.stop(), 0)
            # Written back in our format, which loads again.
            with open(path) as f:
                self.assertTrue(f.read().startswith("["))
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("counter", "PollCount"), (200, "43"))
                self.assertEqual(s2.value("gauge", "Alloc"), (200, "524288.5"))


if __name__ == "__main__":
    unittest.main()
