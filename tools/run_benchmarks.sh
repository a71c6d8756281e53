#!/usr/bin/env bash
# Runs the benchmark suite and a heap profile of the server; saves both under profiles/.
#
#   tools/run_benchmarks.sh [NAME]        NAME: base (default), result, or any label
#
# Writes
#   profiles/NAME-<component>.json   Google Benchmark JSON of each bench binary (repetitions)
#   profiles/NAME.json               all components merged (what compare_profiles.sh reads)
#   profiles/NAME-<component>.txt    the console table of each binary
#   profiles/NAME.heaptrack.zst      heaptrack of metrics-server under bench/heap_workload.py
#   profiles/NAME.heaptrack.txt      heaptrack_print's summary of it
# then compare two runs with tools/compare_profiles.sh base result.
#
# Environment: BUILD_DIR (default build-release, configured --buildtype=release
# -Dbenchmarks=enabled when absent, benchmarks turned on when off), REPETITIONS (default 5),
# BENCH_FILTER (regex passed to --benchmark_filter), MIN_TIME (--benchmark_min_time, seconds), SKIP_HEAP=1 (no heaptrack run),
# HEAP_PORT (default 28090), PROFILES_DIR (default profiles/).
# A component that fails (abort, failed precondition) is reported; the others still run and are
# saved, and the run ends with a summary naming the failed ones and a non-zero exit status.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3  # Debian's, not a pyenv one on PATH
name=${1:-base}
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "run_benchmarks: bad profile name '$name'" >&2; exit 2; }
build_dir=${BUILD_DIR:-$root/build-release}
repetitions=${REPETITIONS:-5}
heap_port=${HEAP_PORT:-28090}
profiles=${PROFILES_DIR:-$root/profiles}
mkdir -p "$profiles"
profiles=$(cd "$profiles" && pwd)

"$root/tools/bench_build.sh" "$build_dir"  # configure only: what to build comes from meson
buildtype=$(meson introspect --buildoptions "$build_dir" |
    "$python" -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')
[[ $buildtype == release ]] || echo "run_benchmarks: warning: $build_dir is a '$buildtype' build, not release" >&2

# The benchmarks meson knows (bench/meson.build registers each binary with benchmark()).
mapfile -t benches < <(meson introspect --benchmarks "$build_dir" |
    "$python" -c 'import json,sys; [print(b["name"], b["cmd"][0]) for b in json.load(sys.stdin)]')
if [[ ${#benches[@]} -eq 0 ]]; then
    echo "run_benchmarks: $build_dir has no benchmarks (configure it with -Dbenchmarks=enabled)" >&2
    exit 1
fi
targets=()
[[ ${SKIP_HEAP:-0} == 1 ]] || targets+=(src/server/metrics-server)
for b in "${benches[@]}"; do targets+=("$(realpath --relative-to="$build_dir" "${b#* }")"); done
echo "run_benchmarks: building ${targets[*]} in ${build_dir#"$root"/}" >&2
"$root/tools/bench_build.sh" "$build_dir" "${targets[@]}" || { echo "run_benchmarks: the build failed" >&2; exit 1; }

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
# Repetitions of the benchmarks in one binary interleaved in random order: the machine's drift
# then hits all of them alike, so ratios within a binary (UpdateJSONHandler to SimdjsonAlone,
# MemoryStorage to the single-lock baseline) hold even when the speed changes mid-run.
args=(--benchmark_repetitions="$repetitions" --benchmark_enable_random_interleaving=true
      --benchmark_display_aggregates_only=true
      --benchmark_out_format=json --benchmark_context=profile="$name",commit="$commit")
[[ -z ${BENCH_FILTER:-} ]] || args+=(--benchmark_filter="$BENCH_FILTER")
[[ -z ${MIN_TIME:-} ]] || args+=(--benchmark_min_time="$MIN_TIME")

outputs=()
failed=()
i=0
for b in "${benches[@]}"; do
    i=$((i + 1))
    bench=${b%% *}
    exe=${b#* }
    component=${bench%_bench}
    out=$profiles/$name-$component.json
    rm -f "$out"
    printf 'run_benchmarks: [%d/%d] %-12s ' "$i" "${#benches[@]}" "$component" >&2
    start=$SECONDS
    # A failing component is reported and the others still run: one broken benchmark must not
    # cost the whole profile.
    if ! "$exe" "${args[@]}" --benchmark_out="$out" >"$profiles/$name-$component.txt" 2>&1; then
        echo "FAILED after $((SECONDS - start)) s (see ${profiles#"$root"/}/$name-$component.txt):" >&2
        tail -3 "$profiles/$name-$component.txt" | sed 's/^/run_benchmarks:     /' >&2
        failed+=("$component")
        rm -f "$out"
        continue
    fi
    if [[ ! -s $out ]]; then
        echo "no benchmark matches the filter" >&2
        rm -f "$out" "$profiles/$name-$component.txt"
        continue
    fi
    count=$("$python" -c 'import json,sys; print(sum(1 for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("run_type") == "iteration"))' "$out")
    echo "$count runs in $((SECONDS - start)) s -> ${profiles#"$root"/}/$name-$component.json" >&2
    outputs+=("$out")
done

# The summary, and the exit status it implies, whatever else follows.
summary() {
    if ((${#failed[@]})); then
        echo "run_benchmarks: FAILED: ${failed[*]} (${#outputs[@]} components saved)" >&2
        return 1
    fi
    echo "run_benchmarks: every component passed (${#outputs[@]} saved)" >&2
}

if ((${#outputs[@]} == 0)); then
    echo "run_benchmarks: no component saved a profile" >&2
    summary
    exit 1
fi

# One file for compare.py: the first context, every component's runs.
"$python" - "$profiles/$name.json" "${outputs[@]}" <<'EOF2'
import json, sys
merged = None
for path in sys.argv[2:]:
    doc = json.load(open(path))
    if merged is None:
        merged = doc
    else:
        merged["benchmarks"].extend(doc["benchmarks"])
json.dump(merged, open(sys.argv[1], "w"), indent=1)
EOF2
echo "run_benchmarks: merged -> ${profiles#"$root"/}/$name.json" >&2

if [[ ${SKIP_HEAP:-0} == 1 ]]; then
    summary
    exit
fi
if ! command -v heaptrack >/dev/null; then
    echo "run_benchmarks: installing heaptrack" >&2
    apt-get install -y -qq heaptrack >/dev/null
fi

# Heap profile: metrics-server (memory storage, no snapshots, no access log) under a fixed
# request mix. heaptrack starts the server as its child; SIGTERM to that child ends the run
# gracefully and heaptrack then writes the profile.
heap_out=$profiles/$name.heaptrack
rm -f "$heap_out".zst "$heap_out".gz
printf 'run_benchmarks: heap profile of metrics-server ' >&2
heaptrack -o "$heap_out" "$build_dir/src/server/metrics-server" -a "127.0.0.1:$heap_port" -access-log=false -f= \
    -threads 1 >"$profiles/$name.heaptrack.log" 2>&1 &
tracker=$!
server=
for _ in $(seq 200); do
    server=$(pgrep -P "$tracker" -x metrics-server || true)
    [[ -n $server ]] && curl -s -o /dev/null "http://127.0.0.1:$heap_port/" && break
    sleep 0.05
done
if [[ -z $server ]]; then
    echo "FAILED: the server did not start (see ${profiles#"$root"/}/$name.heaptrack.log)" >&2
    kill "$tracker" 2>/dev/null || true
    failed+=(heap)
    summary
    exit 1
fi
if ! "$python" "$root/bench/heap_workload.py" "$heap_port" 2>>"$profiles/$name.heaptrack.log"; then
    kill -TERM "$server"
    wait "$tracker" || true
    echo "FAILED: see ${profiles#"$root"/}/$name.heaptrack.log" >&2
    failed+=(heap)
    summary
    exit 1
fi
kill -TERM "$server"
wait "$tracker"
heap_file=$(ls "$heap_out".* | grep -E '\.(zst|gz)$' | head -1)
heaptrack_print -f "$heap_file" --print-peaks=0 --print-temporary=0 -n 5 >"$profiles/$name.heaptrack.txt" 2>/dev/null
echo "-> ${heap_file#"$root"/}" >&2
grep -E '^(calls to allocation functions|temporary memory allocations|peak heap memory consumption|peak RSS)' \
    "$profiles/$name.heaptrack.txt" | sed 's/^/run_benchmarks:   /' >&2
summary
