#!/usr/bin/env bash
# The main job: installs what is missing, builds release, starts metrics-server on its defaults
# (memory storage with snapshots to /tmp/metrics-db.json, listening on localhost:8080) and an
# agent reporting to it. Ctrl-C stops both. Extra arguments go to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# Its own build directory: build-release is the benchmark tools' (release with benchmarks), and a
# build configured here without them would make those tools fail.
tools/build.sh build-run --buildtype=release -Dtests=disabled -Dbenchmarks=disabled

server=build-run/src/server/metrics-server
agent=build-run/src/agent/metrics-agent
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap cleanup EXIT INT TERM

"$server" "$@" &
pids+=($!)
address=${ADDRESS:-localhost:8080}
for _ in $(seq 100); do
    curl -fsS "http://${address#http://}/ping" >/dev/null 2>&1 && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "run: metrics-server failed to start" >&2; exit 1; }
    sleep 0.1
done
echo "run: metrics-server listening on http://${address#http://}/ (try: curl http://${address#http://}/)"
if [[ -x "$agent" ]]; then
    "$agent" -a "$address" &
    pids+=($!)
    echo "run: metrics-agent reporting to $address every ${REPORT_INTERVAL:-10}s"
fi
wait -n
