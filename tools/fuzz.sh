#!/usr/bin/env bash
# Builds one libFuzzer target with clang (AddressSanitizer + UBSan, in its own build directory)
# and runs it for SECONDS on a copy of its seed corpus (test/fuzz/corpus/TARGET). New inputs and
# crash reproducers stay in the printed work directory; the repository's corpus is only read.
# -Dfuzzers=true compiles the project's libraries with -fsanitize=fuzzer-no-link, so libFuzzer
# sees the coverage of the code under test, not only of the target's own file.
# Usage: tools/fuzz.sh TARGET SECONDS      e.g. tools/fuzz.sh router 60
#        tools/fuzz.sh --list              the targets
#   METRICS_FUZZ_BUILD_DIR  build directory (default build-fuzz)
# CI runs every target as a replay under g++ instead (meson suite `fuzz`, tools/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

targets() {
    ls test/fuzz/*_fuzz.cpp | sed -E 's|test/fuzz/(.*)_fuzz\.cpp|\1|'
}

if [[ "${1:-}" == --list ]]; then
    targets
    exit 0
fi
if (($# != 2)) || ! [[ $2 =~ ^[0-9]+$ ]]; then
    echo "usage: tools/fuzz.sh TARGET SECONDS (targets: $(targets | tr '\n' ' '))" >&2
    exit 2
fi
target=$1 seconds=$2
if ! targets | grep -qx "$target"; then
    echo "fuzz.sh: no target '$target' (targets: $(targets | tr '\n' ' '))" >&2
    exit 2
fi
if ! command -v clang++ >/dev/null || ! compgen -G '/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null; then
    echo "fuzz.sh: libFuzzer needs clang and its runtime: apt-get install clang libclang-rt-14-dev" >&2
    exit 1
fi

dir=${METRICS_FUZZ_BUILD_DIR:-build-fuzz}
if [[ ! -f $dir/build.ninja ]]; then
    setup_log=$(mktemp /tmp/metrics-fuzz-setup.XXXXXX)
    # -Dwerror=false: a clang-only warning must not keep the fuzzer from running (CI builds with
    # g++ and -Dwerror=true).
    if ! CC=clang CXX=clang++ meson setup "$dir" --wrap-mode=nodownload -Dfuzzers=true -Dbenchmarks=disabled \
            -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false >"$setup_log" 2>&1; then
        echo "fuzz.sh: configuring $dir with clang failed (log: $setup_log):" >&2
        tail -20 "$setup_log" >&2
        exit 1
    fi
    rm -f "$setup_log"
fi
if ! ninja -C "$dir" "test/fuzz/${target}_fuzz" >"$dir/fuzz-build.log" 2>&1; then
    echo "fuzz.sh: clang could not build ${target}_fuzz (log: $dir/fuzz-build.log):" >&2
    grep -E 'error|Error' "$dir/fuzz-build.log" | head -20 >&2
    exit 1
fi

work=$(mktemp -d "/tmp/metrics-fuzz-$target.XXXXXX")
mkdir -p "$work/corpus" "$work/crashes"
echo "fuzz.sh: $target for $seconds s; new inputs in $work/corpus, crashes in $work/crashes"
# The first corpus directory receives new inputs; the repository's seeds are read only.
"$dir/test/fuzz/${target}_fuzz" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/crashes/" "$work/corpus" "test/fuzz/corpus/$target"
