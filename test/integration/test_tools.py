"""The measuring tools as a user runs them: every benchmark binary once (a smoke run), the
profile workflow (two runs of run_benchmarks.sh, then compare_profiles.sh with a plot), a
short run of each load test (tools/loadtest.sh, tools/security_loadtest.sh) and of the agent's
tools (tools/agent_order.py, tools/agent_vs_collectd.py), and the agent's link order. Each builds what
it needs in METRICS_BUILD_DIR (benchmarks on) and writes its profiles to a temporary
PROFILES_DIR."""

import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
# Every iteration of a timed loop is cheap; what takes time is one run per benchmark, thread
# count and repetition. Two repetitions with random interleaving put each benchmark in an
# arbitrary order, as a real run does.
SMOKE = {"REPETITIONS": "2", "MIN_TIME": "0.001"}
TOOL_TIMEOUT = 900


def run_tool(args, env_extra, timeout=TOOL_TIMEOUT):
    env = dict(os.environ, BUILD_DIR=os.path.abspath(BUILD_DIR), **env_extra)
    return subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, check=False)


def registered_benchmarks():
    """name -> binary path of every benchmark meson registers in the build."""
    out = subprocess.run(["meson", "introspect", "--benchmarks", BUILD_DIR], check=True,
                         stdout=subprocess.PIPE).stdout
    return {b["name"]: b["cmd"][0] for b in json.loads(out)}


def runs_in(path):
    with open(path) as f:
        return [b for b in json.load(f)["benchmarks"] if b.get("run_type") == "iteration"]


class BenchmarkTools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.profiles = cls.tmp.name
        # The first call configures the build with benchmarks and builds them: done once here.
        cls.smoke = run_tool([os.path.join(TOOLS, "run_benchmarks.sh"), "smoke"],
                             dict(SMOKE, PROFILES_DIR=cls.profiles, HEAP_PORT=str(free_port())))
        cls.smoke_output = cls.smoke.stdout.decode(errors="replace")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_benchmark_binary_runs_in_random_order_with_its_thread_ranges(self):
        self.assertEqual(self.smoke.returncode, 0, self.smoke_output)
        self.assertIn("every component passed", self.smoke_output)
        benches = registered_benchmarks()
        self.assertGreaterEqual(len(benches), 8)
        for bench in benches:
            component = bench[:-len("_bench")]
            with self.subTest(component=component):
                runs = runs_in(os.path.join(self.profiles, "smoke-%s.json" % component))
                self.assertTrue(runs)
                # Two repetitions of every benchmark, each of them timed.
                per_name = {}
                for r in runs:
                    per_name[r["run_name"]] = per_name.get(r["run_name"], 0) + 1
                    self.assertGreater(r["iterations"], 0)
                self.assertEqual(set(per_name.values()), {2}, per_name)
        storage = {r["run_name"] for r in runs_in(os.path.join(self.profiles, "smoke-storage.json"))}
        for threads in (1, 2, 4):
            self.assertIn("BM_UpdateCounter<Memory>/real_time/threads:%d" % threads, storage)
            self.assertIn("BM_GetCounter<SingleLockStorage>/real_time/threads:%d" % threads, storage)

    def test_the_smoke_run_saves_a_merged_profile_and_a_heap_profile(self):
        self.assertEqual(self.smoke.returncode, 0, self.smoke_output)
        merged = runs_in(os.path.join(self.profiles, "smoke.json"))
        components = [f for f in os.listdir(self.profiles) if re.fullmatch(r"smoke-\w+\.json", f)]
        self.assertEqual(len(merged), sum(len(runs_in(os.path.join(self.profiles, f))) for f in components))
        with open(os.path.join(self.profiles, "smoke.heaptrack.txt")) as f:
            self.assertRegex(f.read(), r"calls to allocation functions: \d+")

    def test_two_profiles_compare_with_a_plot(self):
        env = dict(SMOKE, PROFILES_DIR=self.profiles, SKIP_HEAP="1",
                   BENCH_FILTER="BM_(GetGauge|UpdateCounter)<Memory>|BM_CalculateHash$")
        for name in ("base", "result"):
            run = run_tool([os.path.join(TOOLS, "run_benchmarks.sh"), name], env)
            self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))
        plot = os.path.join(self.profiles, "cmp.svg")
        cmp = run_tool([os.path.join(TOOLS, "compare_profiles.sh"), "base", "result", "--plot", plot],
                       {"PROFILES_DIR": self.profiles}, timeout=300)
        text = cmp.stdout.decode(errors="replace")
        self.assertEqual(cmp.returncode, 0, text)
        self.assertIn("== time", text)
        self.assertIn("== allocations per iteration", text)
        for name in ("BM_GetGauge<Memory>/real_time/threads:2", "BM_UpdateCounter<Memory>/real_time/threads:4"):
            self.assertIn(name, text)
        with open(plot) as f:
            svg = f.read()
        self.assertIn("<svg", svg)
        self.assertIn("BM_GetGauge", svg)

    def test_a_failing_component_is_named_and_the_others_are_saved(self):
        # METRICS_BENCH_FAIL fails the preconditions of the benchmarks whose names contain it.
        env = dict(SMOKE, PROFILES_DIR=self.profiles, SKIP_HEAP="1",
                   BENCH_FILTER="BM_GetGauge<Memory>|BM_CalculateHash$",
                   METRICS_BENCH_FAIL="BM_GetGauge<MemoryMap>/threads:2")
        run = run_tool([os.path.join(TOOLS, "run_benchmarks.sh"), "partial"], env)
        text = run.stdout.decode(errors="replace")
        self.assertNotEqual(run.returncode, 0, text)
        self.assertIn("FAILED: storage", text)
        self.assertIn("BM_GetGauge<MemoryMap>/threads:2: precondition failed", text)
        self.assertTrue(runs_in(os.path.join(self.profiles, "partial.json")))
        self.assertFalse(os.path.exists(os.path.join(self.profiles, "partial-storage.json")))


class LoadTest(unittest.TestCase):
    def test_a_short_load_test_reports_both_servers(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "loadtest.json")
            run = run_tool([os.path.join(TOOLS, "loadtest.sh"), "-d", "1", "-c", "4", "-o", out,
                            "-e", "update_url", "-e", "value_json"],
                           {"PORT": str(free_port()), "TRIVIAL_PORT": str(free_port()), "WARMUP": "0"})
            self.assertEqual(run.returncode, 0, run.stdout.decode(errors="replace"))
            with open(out) as f:
                report = json.load(f)
            rows = {(r["server"], r["endpoint"]): r for r in report["results"]}
            self.assertEqual(set(rows), {(s, e) for s in ("ours", "trivial") for e in ("update_url", "value_json")})
            for row in rows.values():
                self.assertGreater(row["requests"], 0, row)
                self.assertEqual(row["non_2xx"], 0, row)
            self.assertEqual([r["endpoint"] for r in report["ratios"]], ["update_url", "value_json"])

    def test_a_short_protections_load_test_reports_every_variant(self):
        run = run_tool([os.path.join(TOOLS, "security_loadtest.sh"), "-d", "1", "-c", "4", "-r", "1"],
                       {"PORT": str(free_port()), "RECEIVER_PORT": str(free_port()), "WARMUP": "0"})
        text = run.stdout.decode(errors="replace")
        self.assertEqual(run.returncode, 0, text)
        for variant in ("off", "audit_file", "audit_url", "gzip", "sealed"):
            self.assertRegex(text, r"(?m)^%s +[1-9]\d* " % variant)


AGENT = os.path.join(BUILD_DIR, "src", "agent", "metrics-agent")
AGENT_ORDER = os.path.join(ROOT, "src", "agent", "agent.order")


def functions(binary):
    """name -> address of every function `nm` lists in `binary`'s .text section, but thunks
    (the compiler puts a thunk in the section of the function it adjusts `this` for)."""
    sections = subprocess.run(["readelf", "-SW", binary], check=True, stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"\s\.text\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", sections)
    start, size = int(m.group(1), 16), int(m.group(2), 16)
    out = subprocess.run(["nm", "--defined-only", binary], check=True, stdout=subprocess.PIPE, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW" and not parts[2].startswith(("_ZTh", "_ZTv", "_ZTc")):
            address = int(parts[0], 16)
            if start <= address < start + size:
                table.setdefault(parts[2], address)
    return table


class AgentTools(unittest.TestCase):
    def test_the_agent_is_linked_in_the_recorded_order(self):
        # tools/setup.sh installs lld, so the build links the agent with src/agent/agent.order:
        # the functions it lists come first in the text, in its order.
        with open(AGENT_ORDER) as f:
            order = f.read().split()
        table = functions(AGENT)
        placed = [table[name] for name in order if name in table]
        self.assertGreater(len(placed), 300, "the agent shares few names with agent.order")
        self.assertEqual(placed, sorted(placed), "the agent's functions are not in agent.order's order")
        unlisted = [address for name, address in table.items() if name not in set(order)]
        self.assertLess(max(placed), max(unlisted))
        self.assertEqual(min(min(placed), min(unlisted)), min(placed), "a function not in the list comes first")

    def test_a_short_run_writes_the_agent_order(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "agent.order")
            run = run_tool([os.path.join(TOOLS, "agent_order.py"), "--seconds", "8", "-o", out, AGENT], {})
            text = run.stdout.decode(errors="replace")
            self.assertEqual(run.returncode, 0, text)
            with open(out) as f:
                names = f.read().split()
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("main", names)
        table = functions(AGENT)
        for prefix in ("_ZN5agent6Sender", "_ZN5agent11MetricTable", "_ZN5codec4Gzip8compress"):
            self.assertTrue(any(n.startswith(prefix) and n in table for n in names), prefix)
        self.assertRegex(text, r"agent_order: \d+ symbols written to .* \([1-9]\d* reports received\)")

    def test_a_short_run_beside_collectd_reports_both(self):
        run = run_tool([os.path.join(TOOLS, "agent_vs_collectd.py"), "--seconds", "3", "--warmup", "3",
                        f"agent={AGENT}"], {})
        text = run.stdout.decode(errors="replace")
        self.assertEqual(run.returncode, 0, text)
        for label in ("agent", "collectd"):
            self.assertRegex(text, r"(?m)^\| %s \| \d+\.\d\d \| \d+ \(\d+\) \| " % label)
        self.assertRegex(text, r"(?m)^agent: USS \d+\.\d\dx collectd's$")


if __name__ == "__main__":
    unittest.main()
