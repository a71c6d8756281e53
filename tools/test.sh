#!/usr/bin/env bash
# Installs what is missing, builds, runs every suite (unit, fuzz replay, PostgreSQL, integration,
# then the unit and fuzz suites again under AddressSanitizer + UBSan, and the unit suites under
# ThreadSanitizer) and ends with one line
# `N passed, M failed` counting every test case.
#   METRICS_SKIP_SANITIZERS=1  skip the sanitizer builds (quicker local runs)
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --bench || exit 1  # --bench: the tools' own tests run the benchmarks, heaptrack and wrk

passed=0
failed=0
log_dir=$(mktemp -d /tmp/metrics-test.XXXXXX)
pg_dir=""
cleanup() {
    [[ -n "$pg_dir" ]] && tools/pg.sh stop "$pg_dir" >/dev/null 2>&1
    [[ -n "$pg_dir" ]] && rm -rf "$pg_dir"
}
trap cleanup EXIT

phase() {  # title: a phase header with the seconds spent so far (to see where CI time goes)
    printf '== %s (at %d s)\n' "$1" "$SECONDS"
}

record() {  # name passed failed
    passed=$((passed + $2))
    failed=$((failed + $3))
    printf '%-34s %5d passed, %d failed\n' "$1" "$2" "$3"
}

# A doctest binary: counts its test cases; a crash (no summary) is one failure.
run_doctest() {  # label binary
    local out="$log_dir/$1.log" line p f
    "$2" --no-colors=true >"$out" 2>&1
    local rc=$?
    line=$(grep -E '^\[doctest\] test cases:' "$out" | tail -1)
    if [[ -z "$line" ]]; then
        record "$1" 0 1
        tail -30 "$out"
        return
    fi
    p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$line")
    ((rc != 0 && f == 0)) && f=1
    record "$1" "$p" "$f"
    ((f > 0)) && grep -B2 -A12 -E 'ERROR|FATAL' "$out" | head -80
}

# Every test of a meson suite as one case (fuzz replays).
run_meson_suite() {  # label builddir suite
    local out="$log_dir/$1.log"
    meson test -C "$2" --suite "$3" --no-rebuild --print-errorlogs >"$out" 2>&1
    local ok fail
    ok=$(grep -E '^Ok: ' "$out" | awk '{print $2}')
    fail=$(grep -E '^(Fail|Timeout): ' "$out" | awk '{s+=$2} END {print s+0}')
    record "$1" "${ok:-0}" "${fail:-1}"
    ((fail > 0)) && grep -E 'FAIL|TIMEOUT' "$out" | head -20
}

# The unit test targets, without PostgreSQL's (its suite needs a server: run on its own). The
# sanitizer builds build only these and the fuzz replays.
unit_targets() {
    local dir name
    for dir in test/unit/*/; do
        name=$(basename "$dir")
        [[ $name == postgres ]] || echo "test/unit/$name/unit_$name"
    done
}

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

# Warnings are errors here, never in a user's build (meson.build leaves werror off). The
# benchmarks build too: test/integration/test_tools.py runs each binary once.
phase "build (debugoptimized)"
if ! tools/build.sh build -Dbenchmarks=enabled -Dwerror=true; then
    record build 0 1
    echo "$passed passed, $failed failed"
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
    run_doctest unit_postgres build/test/unit/postgres/unit_postgres
else
    echo "could not start PostgreSQL"
    record postgres 0 1
fi

phase "integration"
out="$log_dir/integration.log"
METRICS_BUILD_DIR=build /usr/bin/python3 test/integration/run.py >"$out" 2>&1
line=$(grep -E '^integration: ' "$out" | tail -1)
if [[ -n "$line" ]]; then
    record integration "$(awk '{print $2}' <<<"$line")" "$(awk '{print $4}' <<<"$line" | tr -d ,)"
    grep -E '^(FAIL|ERROR):' "$out" | head -40
    grep -qE '^(FAIL|ERROR):' "$out" && grep -A25 -E '^(FAIL|ERROR):' "$out" | head -150
else
    record integration 0 1
    tail -40 "$out"
fi

if [[ "${METRICS_SKIP_SANITIZERS:-0}" != 1 ]]; then
    phase "address + undefined sanitizers"
    export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    if sanitizer_build build-asan address,undefined $(unit_targets) $(fuzz_targets); then
        for target in $(unit_targets); do
            run_doctest "asan_$(basename "$target")" "build-asan/$target"
        done
        FUZZ_ITERATIONS=5000 run_meson_suite asan_fuzz_replay build-asan fuzz
    else
        record asan_build 0 1
    fi

    # The unit binaries only: they hold the concurrency tests (storage shards and batches, the
    # agent's channel and senders, the snapshot writer).
    phase "thread sanitizer"
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    if sanitizer_build build-tsan thread $(unit_targets); then
        for target in $(unit_targets); do
            run_doctest "tsan_$(basename "$target")" "build-tsan/$target"
        done
    else
        record tsan_build 0 1
    fi
fi

phase "done"
echo "logs: $log_dir"
echo "$passed passed, $failed failed"
((failed == 0))
