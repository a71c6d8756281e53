"""Configuration, snapshots, restore, durability and signals of the real binary."""

from harness import *  # noqa: F401,F403


def run_server(args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items() if k not in ("ADDRESS", "STORE_INTERVAL", "FILE_STORAGE_PATH",
                                                          "RESTORE", "KEY", "CONFIG", "DATABASE_DSN")}
    e.update(env or {})
    return subprocess.run([SERVER_BIN, *args], env=e, capture_output=True, timeout=timeout)


class Configuration(unittest.TestCase):
    def test_help_and_version_exit_0(self):
        r = run_server(["--help"])
        self.assertEqual(r.returncode, 0)
        for name in [b"-a", b"ADDRESS", b"STORE_INTERVAL", b"FILE_STORAGE_PATH", b"RESTORE", b"DATABASE_DSN", b"KEY"]:
            self.assertIn(name, r.stdout)
        r = run_server(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"metrics-server", r.stdout)

    def test_usage_errors_exit_2_with_one_line(self):
        for args, env in [(["-bogus"], {}), (["-i", "abc"], {}), ([], {"STORE_INTERVAL": "x"}), (["-a", "nohost"], {})]:
            r = run_server(args, env)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_env_beats_flag_beats_file(self):
        with tempfile.TemporaryDirectory() as d:
            cfg = os.path.join(d, "c.json")
            p_file, p_flag, p_env = free_port(), free_port(), free_port()
            with open(cfg, "w") as f:
                json.dump({"address": "127.0.0.1:%d" % p_file, "store_file": "", "restore": False}, f)
            for args, env, expected in [(["-c", cfg], {}, p_file),
                                        (["-c", cfg, "-a", "127.0.0.1:%d" % p_flag], {}, p_flag),
                                        (["-c", cfg, "-a", "127.0.0.1:%d" % p_flag],
                                         {"ADDRESS": "127.0.0.1:%d" % p_env}, p_env),
                                        ([], {"CONFIG": cfg}, p_file)]:
                e = dict(env)
                proc = subprocess.Popen([SERVER_BIN, *args], env={**{k: v for k, v in os.environ.items()
                                                                     if k not in ("ADDRESS", "CONFIG")}, **e},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    wait_for_port(expected, proc)
                finally:
                    proc.terminate()
                    self.assertEqual(proc.wait(10), 0)

    def test_port_in_use_exits_1(self):
        with Server() as s:
            r = run_server(["-a", "127.0.0.1:%d" % s.port, "-f", ""])
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"cannot listen", r.stderr)

    def test_unreadable_config_file_exits_1(self):
        r = run_server(["-c", "/nonexistent/config.json"])
        self.assertEqual(r.returncode, 1)


class Persistence(unittest.TestCase):
    def test_restart_restores_the_snapshot(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            with Server("-i", "300", snapshot=path) as s:
                s.request("POST", "/update/gauge/kept/2.5")
                s.request("POST", "/update/counter/kept/11")
                self.assertEqual(s.stop(), 0)  # final snapshot on SIGTERM
            with Server(snapshot=path) as s:
                self.assertEqual(s.value("gauge", "kept"), (200, "2.5"))
                self.assertEqual(s.value("counter", "kept"), (200, "11"))
            with Server("-r=false", snapshot=path) as s:
                self.assertEqual(s.value("gauge", "kept")[0], 404)

    def test_sigkill_with_store_interval_0_loses_no_acknowledged_update(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            s = Server("-i", "0", snapshot=path).start()
            c = s.conn()
            for i in range(200):
                self.assertEqual(s.request("POST", "/update/counter/durable/1", conn=c)[0], 200)
            s.post_json("/updates/", [{"id": "dg", "type": "gauge", "value": 0.1}])
            s.kill()
            with Server(snapshot=path) as s2:
                self.assertEqual(s2.value("counter", "durable"), (200, "200"))
                self.assertEqual(s2.value("gauge", "dg"), (200, "0.1"))
            s.tmp.cleanup()

    def test_corrupt_snapshot_is_a_startup_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "db.json")
            with open(path, "w") as f:
                f.write('[{"id":"x","type":"gauge","value":')
            r = run_server(["-a", "127.0.0.1:%d" % free_port(), "-f", path])
            self.assertEqual(r.returncode, 1)
            # One line says what stops the start; the storage's log line before it gives the detail.
            verdicts = [l for l in r.stderr.decode().splitlines() if l.startswith("metrics-server:")]
            self.assertEqual(len(verdicts), 1, r.stderr)
            self.assertIn(path, verdicts[0])

    def test_missing_snapshot_file_is_fine(self):
        with tempfile.TemporaryDirectory() as d:
            with Server(snapshot=os.path.join(d, "absent.json")) as s:
                self.assertEqual(s.request("GET", "/ping")[0], 200)


class Signals(unittest.TestCase):
    def test_sigint_sigterm_sigquit_exit_0(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            with Server() as s:
                s.request("POST", "/update/gauge/sig/1")
                self.assertEqual(s.stop(sig), 0, sig)

    def test_inherited_ignored_sigterm_still_stops(self):
        def ignore():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        port = free_port()
        proc = subprocess.Popen([SERVER_BIN, "-a", "127.0.0.1:%d" % port, "-f", ""], preexec_fn=ignore,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port, proc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)


if __name__ == "__main__":
    unittest.main()
