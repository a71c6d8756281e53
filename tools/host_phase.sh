#!/usr/bin/env bash
# Says which speed phase this (virtual) machine is in, so that measurements taken at different
# times can be told apart. Run it right before and after a measurement; compare figures only
# between runs whose phase lines agree.
#
#   tools/host_phase.sh
#
# Prints three lines (see docs/PROFILING.md, section 7):
#   parallel      CPU time over real time of a two-thread benchmark: near 2 when the host really
#                 runs both vCPUs at once, near 1 when they take turns (two-thread figures are
#                 then meaningless);
#   shared line   an atomic add on one cache line, one thread -> two: the cost of moving a line
#                 between the vCPUs (3x to 4.5x seen here; more means dearer transfers);
#   json/simdjson BM_UpdateJSONHandler over BM_SimdjsonAlone, repetitions interleaved at random:
#                 about 3x in the fast phase, 4x and more in the slow one.
#
# Environment: BUILD_DIR (default build-release, release with benchmarks; built first).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3  # Debian's, not a pyenv one on PATH
build_dir=${BUILD_DIR:-$root/build-release}
"$root/tools/bench_build.sh" "$build_dir" bench/storage_bench bench/handlers_bench ||
    { echo "host_phase: the build failed" >&2; exit 1; }

storage=$("$build_dir/bench/storage_bench" --benchmark_filter='^BM_SharedLineAdd/' \
    --benchmark_min_time=0.3 --benchmark_format=json 2>/dev/null)
handlers=$("$build_dir/bench/handlers_bench" --benchmark_filter='^BM_(UpdateJSONHandler|SimdjsonAlone)$' \
    --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null)

"$python" - "$storage" "$handlers" <<'EOF'
import json
import sys

storage = {b["name"]: b for b in json.loads(sys.argv[1])["benchmarks"]}
one = storage["BM_SharedLineAdd/real_time/threads:1"]
two = storage["BM_SharedLineAdd/real_time/threads:2"]
# Per-operation CPU time of one thread: the two-thread run's CPU time covers both threads.
print(f"host_phase: parallel       {two['cpu_time'] / two['real_time']:.2f} "
      f"({'both vCPUs at once' if two['cpu_time'] > 1.6 * two['real_time'] else 'taking turns: two-thread figures mean nothing now'})")
print(f"host_phase: shared line    {one['cpu_time']:.1f} -> {two['cpu_time']:.1f} ns per add "
      f"({two['cpu_time'] / one['cpu_time']:.2f}x)")
medians = {b["run_name"]: b["cpu_time"] for b in json.loads(sys.argv[2])["benchmarks"]
           if b.get("aggregate_name") == "median"}
handler, simdjson = medians["BM_UpdateJSONHandler"], medians["BM_SimdjsonAlone"]
print(f"host_phase: json/simdjson  {handler:.0f} / {simdjson:.1f} ns ({handler / simdjson:.2f}x)")
EOF
