#!/usr/bin/env bash
# Loopback load test of the protections: POST /updates/ with 100 metrics, requests per server
# CPU-second (utime+stime from /proc) with each protection on, against the same server with it
# off, measured in one run so the ratios share the machine's state.
#
#   tools/security_loadtest.sh [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS]
#
# Variants: off (plain JSON body), audit_file (-audit-file in a temporary directory), audit_url
# (-audit-url to bench/trivial-server, which answers every POST at once), gzip (the body gzip'd,
# no key), sealed (gzip'd then sealed to the server's key, server with -crypto-key). Each round
# runs every variant once; the median round per variant is reported. The server runs with one
# I/O thread pinned to SERVER_CPU (default 1), wrk with one thread on CLIENT_CPU (default 0);
# the audit receiver shares the client's core. Environment: BUILD_DIR (default build-release),
# PORT (default 28090), RECEIVER_PORT (default 28091), WARMUP (seconds, default 1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3
duration=5
connections=16
rounds=3
while getopts "d:c:r:h" opt; do
    case $opt in
    d) duration=$OPTARG ;;
    c) connections=$OPTARG ;;
    r) rounds=$OPTARG ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
build_dir=${BUILD_DIR:-$root/build-release}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
port=${PORT:-28090}
receiver_port=${RECEIVER_PORT:-28091}
warmup=${WARMUP:-1}
"$root/tools/bench_build.sh" "$build_dir" src/server/metrics-server src/keygen/metrics-keygen bench/trivial-server ||
    { echo "security_loadtest: the build failed" >&2; exit 1; }
server_bin=$build_dir/src/server/metrics-server
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
wait_ready() {
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || { echo "security_loadtest: a server exited at start" >&2; cat "$work"/*.log >&2; exit 1; }
        curl -s -o /dev/null "http://127.0.0.1:$2/" && return 0
        sleep 0.05
    done
    echo "security_loadtest: nothing answers on port $2" >&2
    exit 1
}

mkdir "$work/keys"
"$build_dir/src/keygen/metrics-keygen" "$work/keys" >/dev/null
# The same 100 metrics as bench/wrk/updates.lua, as JSON, gzip'd, and gzip'd then sealed.
"$python" - "$work" <<'PY'
import base64, ctypes, ctypes.util, gzip, sys
work = sys.argv[1]
parts = []
for i in range(1, 101):
    parts.append('{"id":"batch%d","type":"counter","delta":%d}' % (i, i) if i % 2 == 0
                 else '{"id":"batch%d","type":"gauge","value":%d.25}' % (i, i))
body = ("[" + ",".join(parts) + "]").encode()
open(work + "/plain.json", "wb").write(body)
packed = gzip.compress(body)
open(work + "/gzip.bin", "wb").write(packed)
sodium = ctypes.CDLL(ctypes.util.find_library("sodium"))
assert sodium.sodium_init() >= 0
key = base64.b64decode(open(work + "/keys/public.key").read().split()[1])
out = ctypes.create_string_buffer(len(packed) + 48)
assert sodium.crypto_box_seal(out, packed, ctypes.c_ulonglong(len(packed)), key) == 0
open(work + "/sealed.bin", "wb").write(out.raw)
PY

taskset -c "$client_cpu" "$build_dir/bench/trivial-server" -a "127.0.0.1:$receiver_port" -threads 1 2>"$work/receiver.log" &
receiver=$!
pids=("$receiver")
wait_ready "$receiver" "$receiver_port"

lua=$root/bench/wrk/body_file.lua
variants=(off audit_file audit_url gzip sealed)
# measure VARIANT ROUND: one server, warm-up, one measured wrk run; prints "requests cpu_ticks".
measure() {
    local v=$1 round=$2 args=() wrk_args=()
    case $v in
    off) wrk_args=("$work/plain.json" "Content-Type: application/json") ;;
    audit_file) args=(-audit-file "$work/audit.$round.log"); wrk_args=("$work/plain.json" "Content-Type: application/json") ;;
    audit_url) args=(-audit-url "http://127.0.0.1:$receiver_port/audit"); wrk_args=("$work/plain.json" "Content-Type: application/json") ;;
    gzip) wrk_args=("$work/gzip.bin" "Content-Type: application/json" "Content-Encoding: gzip") ;;
    sealed) args=(-crypto-key "$work/keys/private.key")
            wrk_args=("$work/sealed.bin" "Content-Type: application/json" "Content-Encoding: gzip" "X-Encrypted: sealed-box") ;;
    esac
    taskset -c "$server_cpu" "$server_bin" -a "127.0.0.1:$port" -access-log=false -f= -threads 1 "${args[@]}" \
        2>"$work/server.$v.log" &
    local pid=$!
    pids=("$receiver" "$pid")
    wait_ready "$pid" "$port"
    local url="http://127.0.0.1:$port/updates/"
    [[ $warmup == 0 ]] || taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${warmup}s" -s "$lua" "$url" -- "${wrk_args[@]}" >/dev/null
    local before after
    before=$(cpu_ticks "$pid")
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${duration}s" -s "$lua" "$url" -- "${wrk_args[@]}" >"$work/$v.$round.wrk"
    after=$(cpu_ticks "$pid")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    pids=("$receiver")
    if grep -q "Non-2xx" "$work/$v.$round.wrk"; then
        echo "security_loadtest: $v answered errors:" >&2; cat "$work/$v.$round.wrk" >&2; exit 1
    fi
    echo "$(awk '/requests in/ { print $1 }' "$work/$v.$round.wrk") $((after - before))" >"$work/$v.$round.result"
    echo "security_loadtest: round $round $v: $(cat "$work/$v.$round.result") (requests, CPU ticks)" >&2
    # A sink that fell behind dropped events: the figure would then flatter it.
    if grep -h "audit:" "$work/server.$v.log" >&2; then echo "security_loadtest: ($v logged the above)" >&2; fi
}
for round in $(seq "$rounds"); do
    for v in "${variants[@]}"; do measure "$v" "$round"; done
done
"$python" - "$work" "$rounds" "$(getconf CLK_TCK)" "${variants[@]}" <<'PY'
import statistics, sys
work, rounds, tck, variants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def per_cpu_s(v, r):
    requests, ticks = open("%s/%s.%d.result" % (work, v, r)).read().split()
    return int(requests) / (int(ticks) / tck)
median = {v: statistics.median(per_cpu_s(v, r) for r in range(1, rounds + 1)) for v in variants}
base = {"audit_file": "off", "audit_url": "off", "sealed": "gzip"}
print("%-11s %22s %8s" % ("variant", "requests/server CPU-s", "ratio"))
for v in variants:
    ratio = "%.3fx" % (median[v] / median[base[v]]) if v in base else "-"
    print("%-11s %22.0f %8s  (rounds: %s)" % (v, median[v], ratio,
          ", ".join("%.0f" % per_cpu_s(v, r) for r in range(1, rounds + 1))))
PY
