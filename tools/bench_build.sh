#!/usr/bin/env bash
# Builds TARGETs in a release build with the benchmarks (the build the measuring tools share):
# configures DIR as one when it does not exist, and turns the benchmarks on when DIR has them
# off (tools/run.sh builds without them, in its own directory). With no TARGET it only
# configures. Errors go to stderr.
#   tools/bench_build.sh DIR [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" --wrap-mode=nodownload --buildtype=release -Dbenchmarks=enabled >/dev/null
elif meson introspect --buildoptions "$dir" | /usr/bin/python3 -c '
import json, sys
sys.exit(0 if any(o["name"] == "benchmarks" and o["value"] == "disabled" for o in json.load(sys.stdin)) else 1)'; then
    meson configure "$dir" -Dbenchmarks=enabled >/dev/null
fi
[[ $# -gt 0 ]] || exit 0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ninja -C "$dir" -j "$(nproc)" "$@" >"$log" 2>&1 || { grep -E 'error|FAILED' "$log" | head -20 >&2; exit 1; }
