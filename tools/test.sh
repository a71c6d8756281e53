#!/usr/bin/env bash
# Installs what is missing, builds, runs every suite (unit, fuzz replay, PostgreSQL, integration;
# the unit suites again in the release build, the clang build and, when their sources are
# unpacked, the build with fmt and simdjson from subprojects/; then the unit, PostgreSQL and fuzz
# suites and the integration suite against the real daemons again under AddressSanitizer + UBSan,
# and the unit and PostgreSQL suites and the integration suite under ThreadSanitizer) and ends
# with one line `N passed, M failed, K skipped` counting every test case. Every binary and runner
# has a time limit: a hang is a failure that says so. Every build has -Dwerror=true.
#   METRICS_SKIP_SANITIZERS=1  skip the sanitizer builds (quicker local runs)
#   FUZZ_SEED=N                replay the fuzz mutations of an earlier run (each run picks one)
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --test || exit 1  # the tools' tests run benchmarks, heaptrack and wrk; the page test Chromium

passed=0
failed=0
skipped=0
log_dir=$(mktemp -d /tmp/metrics-test.XXXXXX)
pg_dir=""
cleanup() {
    [[ -n "$pg_dir" ]] && tools/pg.sh stop "$pg_dir" >/dev/null 2>&1
    [[ -n "$pg_dir" ]] && rm -rf "$pg_dir"
}
trap cleanup EXIT

# Time limits in seconds: far above a healthy run (unit binaries take seconds, the integration
# suite minutes) so that only a hang reaches them.
unit_limit=${METRICS_UNIT_TIMEOUT:-600}
suite_limit=${METRICS_SUITE_TIMEOUT:-1500}

phase() {  # title: a phase header with the seconds spent so far (to see where CI time goes)
    printf '== %s (at %d s)\n' "$1" "$SECONDS"
}

record() {  # name passed failed [skipped]
    local k=${4:-0}
    passed=$((passed + $2))
    failed=$((failed + $3))
    skipped=$((skipped + k))
    printf '%-34s %5d passed, %d failed, %d skipped\n' "$1" "$2" "$3" "$k"
}

# Runs `command...` with a time limit (SIGTERM, then SIGKILL 10 s later); output to `log`.
# Returns the command's status; a hang says so on the console and in the log and returns 124.
limited() {  # label seconds log command...
    local label=$1 limit=$2 log=$3
    shift 3
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    local rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "TIMEOUT: $label did not finish within $limit s (hang?); killed" | tee -a "$log"
        return 124
    fi
    return "$rc"
}

# A doctest binary: counts its test cases; a crash, hang or missing summary is one failure.
run_doctest() {  # label binary
    local out="$log_dir/$1.log" line p f k rc
    if [[ ! -x $2 ]]; then
        echo "$1: $2 does not exist"
        record "$1" 0 1
        return
    fi
    limited "$1" "$unit_limit" "$out" "$2" --no-colors=true
    rc=$?
    line=$(grep -E '^\[doctest\] test cases:' "$out" | tail -1)
    if [[ -z "$line" ]]; then
        record "$1" 0 1
        tail -30 "$out"
        return
    fi
    p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
    k=$(sed -nE 's/.*\| *([0-9]+) skipped.*/\1/p' <<<"$line")
    ((rc != 0 && f == 0)) && f=1
    if ((p + f == 0)); then
        echo "$1: no test case ran"
        f=1
    fi
    record "$1" "$p" "$f" "${k:-0}"
    ((f > 0)) && grep -B2 -A12 -E 'ERROR|FATAL' "$out" | head -80
}

meson_count() {  # log title: the number on meson's summary line "title: N" (0 when absent)
    grep -E "^$2: +[0-9]+" "$1" | sed -E 's/.*: +([0-9]+).*/\1/' | awk '{s+=$1} END {print s+0}'
}

# Every test of a meson suite as one case (fuzz replays), counted from meson's summary and
# checked against its exit status: a suite with no test, a missing program or a non-zero exit
# that the summary does not explain is a failure.
run_meson_suite() {  # label builddir suite
    local out="$log_dir/$1.log" rc ok fail skip
    limited "$1" "$suite_limit" "$out" meson test -C "$2" --suite "$3" --no-rebuild --print-errorlogs
    rc=$?
    ok=$(meson_count "$out" Ok)
    fail=$(( $(meson_count "$out" Fail) + $(meson_count "$out" Timeout) + $(meson_count "$out" 'Unexpected Pass') ))
    skip=$(meson_count "$out" Skipped)
    if ((ok + fail == 0)); then
        echo "$1: no test ran (meson exit status $rc)"
        grep -iE 'no suitable tests|does not exist|error' "$out" | head -5
        fail=1
    elif ((rc != 0 && fail == 0)); then
        echo "$1: meson test exited $rc with no failing test in its summary"
        tail -5 "$out"
        fail=1
    fi
    record "$1" "$ok" "$fail" "$skip"
    ((fail > 0)) && grep -E 'FAIL|TIMEOUT' "$out" | head -20
}

# The integration runner (test/integration/run.py) against the daemons of `builddir`;
# `patterns` choose modules (all by default).
run_integration() {  # label builddir [patterns...]
    local label=$1 dir=$2 out="$log_dir/$1.log" line
    shift 2
    METRICS_BUILD_DIR=$dir limited "$label" "$suite_limit" "$out" /usr/bin/python3 test/integration/run.py "$@"
    line=$(grep -E '^integration: [0-9]+ passed' "$out" | tail -1)
    if [[ -n "$line" ]]; then
        record "$label" "$(awk '{print $2}' <<<"$line")" "$(awk '{print $4}' <<<"$line")" "$(awk '{print $6}' <<<"$line")"
        grep -E '^(FAIL|ERROR):' "$out" | head -40
        grep -qE '^(FAIL|ERROR):' "$out" && grep -A30 -E '^(FAIL|ERROR):' "$out" | head -200
    else
        record "$label" 0 1
        tail -40 "$out"
    fi
}

# The unit test targets, without PostgreSQL's (its suite needs a server: run on its own).
unit_targets() {
    local dir name
    for dir in test/unit/*/; do
        name=$(basename "$dir")
        [[ $name == postgres ]] || echo "test/unit/$name/unit_$name"
    done
}

postgres_target=test/unit/postgres/unit_postgres
daemon_targets=(src/server/metrics-server src/agent/metrics-agent src/keygen/metrics-keygen)

# The fuzz replay targets (the binaries of the meson suite `fuzz`).
fuzz_targets() {
    meson introspect --tests build | /usr/bin/python3 -c '
import json, os, sys
for test in json.load(sys.stdin):
    if any(suite.endswith(":fuzz") for suite in test["suite"]):
        print(os.path.relpath(test["cmd"][0], "build"))' | sort -u
}

# A sanitizer build directory with only `targets` built. At -O0 (buildtype=debug): it compiles
# in about half the time of -O2, the suites run in seconds either way, and the sanitizers lose
# nothing (they instrument every access; optimisation only hides some).
sanitizer_build() {  # dir sanitizers targets...
    local dir=$1 sanitize=$2
    shift 2
    { [[ -f $dir/build.ninja ]] ||
      meson setup "$dir" --wrap-mode=nodownload -Dbuildtype=debug -Db_sanitize="$sanitize" \
          -Db_lundef=false -Dbenchmarks=disabled -Dwerror=true >/dev/null; } &&
    ninja -C "$dir" -j "$(nproc)" "$@" >/dev/null
}

# A further build directory with the unit binaries and the daemons, configured once; its build
# log stays in the log directory.
variant_build() {  # dir label meson-options...
    local dir=$1 log="$log_dir/$2-build.log"
    shift 2
    { [[ -f $dir/build.ninja ]] ||
      meson setup "$dir" --wrap-mode=nodownload -Dbenchmarks=disabled -Dwerror=true "$@" >"$log" 2>&1; } &&
    ninja -C "$dir" -j "$(nproc)" $(unit_targets) "${daemon_targets[@]}" >>"$log" 2>&1 && return 0
    echo "$dir: build failed (log: $log)"
    grep -E -A5 'error|warning' "$log" | head -40
    return 1
}

# Prints the names whose wrap's source is neither unpacked nor in subprojects/packagecache/;
# fails when every one is there.
fallback_sources_missing() {  # names...
    local name dir file missing=()
    for name in "$@"; do
        dir=$(sed -nE 's/^directory *= *(.*[^ ]) *$/\1/p' "subprojects/$name.wrap")
        file=$(sed -nE 's/^source_filename *= *(.*[^ ]) *$/\1/p' "subprojects/$name.wrap")
        [[ -f subprojects/$dir/meson.build || -f subprojects/packagecache/$file ]] || missing+=("$name")
    done
    ((${#missing[@]})) && echo "${missing[*]}"
}

# The unit binaries of a build directory but PostgreSQL's.
run_unit_suites() {  # prefix builddir
    local target
    for target in $(unit_targets); do
        run_doctest "$1$(basename "$target")" "$2/$target"
    done
}

# The sanitizer builds run the unit binaries and the PostgreSQL suite as the plain build does.
run_units() {  # prefix builddir
    run_unit_suites "$1" "$2"
    if [[ -n "${METRICS_TEST_DSN:-}" ]]; then
        run_doctest "$1unit_postgres" "$2/$postgres_target"
    fi
}

# Each run mutates the fuzz seeds differently; the seed is printed so a failure can be replayed.
export FUZZ_SEED=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "fuzz seed: $FUZZ_SEED (FUZZ_SEED=$FUZZ_SEED tools/test.sh replays this run's mutations)"

# Warnings are errors here, never in a user's build (meson.build leaves werror off). The
# benchmarks build too: test/integration/test_tools.py runs each binary once.
phase "build (debugoptimized)"
if ! tools/build.sh build -Dbenchmarks=enabled -Dwerror=true; then
    record build 0 1
    echo "$passed passed, $failed failed, $skipped skipped"
    exit 1
fi

phase "unit"
for target in $(unit_targets); do
    run_doctest "$(basename "$target")" "build/$target"
done
run_meson_suite fuzz_replay build fuzz

phase "postgres"
pg_dir=$(mktemp -d /tmp/metrics-pg.XXXXXX)
if dsn=$(tools/pg.sh start "$pg_dir"); then
    export METRICS_TEST_DSN="$dsn" METRICS_TEST_PGDIR="$pg_dir"
    run_doctest unit_postgres "build/$postgres_target"
else
    echo "could not start PostgreSQL"
    record postgres 0 1
fi

phase "integration"
run_integration integration build

# The build users run in production (meson.build's default is debugoptimized): it must build
# warning-free too, and its unit suites pass at -O3 with NDEBUG.
phase "release build"
if variant_build build-release release --buildtype=release; then
    run_unit_suites release_ build-release
else
    record release_build 0 1
fi

# clang sees other bugs than g++ (and tools/fuzz.sh builds with it).
phase "clang build"
if ! command -v clang++ >/dev/null; then
    echo "clang build: clang++ is missing (tools/setup.sh installs clang)"
    record clang_build 0 1
elif CC=clang CXX=clang++ variant_build build-clang clang --buildtype=debug; then
    run_unit_suites clang_ build-clang
else
    record clang_build 0 1
fi

# Dependencies from subprojects/ (WrapDB's wraps and packagefiles) instead of Debian's: only
# when their sources are at hand, since CI never downloads (tools/subprojects.sh makes them from
# local clones of the upstream repositories; docs/BUILDING.md). Every wrapped one the build
# uses when all are there (Asio 1.24 against Debian's 1.22), else fmt and simdjson.
phase "fallback build (dependencies from subprojects/)"
fallback=()
if ! fallback_sources_missing asio fmt simdjson doctest >/dev/null; then
    fallback=(--wrap-mode=forcefallback)
elif ! fallback_sources_missing fmt simdjson >/dev/null; then
    fallback=(--force-fallback-for=fmt,simdjson)
fi
if ((${#fallback[@]} == 0)); then
    echo "fallback build skipped: no source for $(fallback_sources_missing fmt simdjson) in subprojects/" \
         "(tools/subprojects.sh fmt=CLONE simdjson=CLONE)"
    record fallback_build 0 0 1
elif echo "fallback build: ${fallback[*]}" && variant_build build-fallback fallback --buildtype=debug "${fallback[@]}"; then
    run_unit_suites fallback_ build-fallback
else
    record fallback_build 0 1
fi

if [[ "${METRICS_SKIP_SANITIZERS:-0}" != 1 ]]; then
    # The daemons start and stop several times slower under the sanitizers.
    export METRICS_START_TIMEOUT=60 METRICS_STOP_TIMEOUT=60

    phase "address + undefined sanitizers"
    export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    if sanitizer_build build-asan address,undefined $(unit_targets) "$postgres_target" "${daemon_targets[@]}" \
            $(fuzz_targets); then
        run_units asan_ build-asan
        FUZZ_ITERATIONS=5000 run_meson_suite asan_fuzz_replay build-asan fuzz
        # The whole suite but the measuring tools' (they need the benchmarks, which these builds
        # leave out): every request path, shutdown and restart of the real daemons.
        METRICS_SANITIZER=address run_integration asan_integration build-asan --exclude=test_tools.py
    else
        record asan_build 0 1
    fi

    # The unit binaries hold the concurrency tests (storage shards and batches, the agent's
    # channel and senders, the snapshot writer); the integration suite runs the daemons' threads
    # (listener, snapshot timer, agent senders, PostgreSQL pool) under real traffic.
    phase "thread sanitizer"
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    if sanitizer_build build-tsan thread $(unit_targets) "$postgres_target" "${daemon_targets[@]}"; then
        run_units tsan_ build-tsan
        # The daemon's batches lock up to all 64 storage shards at once, more than TSan's deadlock
        # detector can hold ("CHECK failed: sanitizer_deadlock_detector.h:67"): here it checks
        # races only; the unit suites above keep lock-order checking with fewer shards.
        TSAN_OPTIONS=$TSAN_OPTIONS:detect_deadlocks=0 METRICS_SANITIZER=thread \
            run_integration tsan_integration build-tsan --exclude=test_tools.py
    else
        record tsan_build 0 1
    fi
fi

phase "done"
echo "logs: $log_dir"
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
