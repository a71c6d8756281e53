#!/usr/bin/env bash
# Loopback load test: metrics-server against the trivial fixed-response server (bench/).
#
#   tools/loadtest.sh [-d SECONDS] [-c CONNECTIONS] [-r RUNS] [-o FILE.json] [-e ENDPOINT]...
#                     [-i STORE_INTERVAL] [-m METRICS]
#
# Each server runs pinned to one core (SERVER_CPU, default 1) with one I/O thread; wrk runs
# pinned to the other (CLIENT_CPU, default 0) with one thread and keep-alive connections. For
# every endpoint it prints requests/s, metrics/s, requests per server CPU-second (utime+stime
# from /proc/PID/stat), p50/p99 latency and our ratios to the trivial server, and writes the
# same table as JSON (default profiles/loadtest.json). wrk on one core is often the limit at
# 16+ connections, so requests per server CPU-second is the figure that separates servers.
# With -r RUNS (default 1) every endpoint is measured RUNS times per server, and the run with
# the median requests per server CPU-second is reported (this machine's speed drifts between
# runs; the table lists every run's figure under `runs` in the JSON).
#
# Durable mode: with -i STORE_INTERVAL ours keeps a write-ahead log and snapshots in a temporary
# directory (-f) with that interval (0: every update waits for its fdatasync, group commit); the
# log line it writes at exit gives the records appended and the fdatasyncs (fsyncs per update).
# -m METRICS stores that many counters first (POST /updates/ batches of 10,000): the durable cost
# must not grow with them. The endpoint update_counter (POST /update/counter/c/1) is the update
# a durable store logs for each request.
#
# Environment: BUILD_DIR (default build-release, release with benchmarks; built first),
# METRICS_SERVER, TRIVIAL_SERVER (binaries), SERVER_CPU, CLIENT_CPU, PORT (ours, default 28080),
# TRIVIAL_PORT (default 28081), WARMUP (seconds before each measured run, default 1).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3  # Debian's, not a pyenv one on PATH
duration=10
connections=64
runs=1
out=$root/profiles/loadtest.json
endpoints=()
interval=
preload=0
while getopts "d:c:r:o:e:i:m:h" opt; do
    case $opt in
    d) duration=$OPTARG ;;
    r) runs=$OPTARG ;;
    c) connections=$OPTARG ;;
    o) out=$OPTARG ;;
    e) endpoints+=("$OPTARG") ;;
    i) interval=$OPTARG ;;
    m) preload=$OPTARG ;;
    *) sed -n '2,26p' "$0"; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "loadtest: -r needs a positive number of runs" >&2; exit 2; }
[[ -z $interval || $interval =~ ^[0-9]+$ ]] || { echo "loadtest: -i needs a number of seconds" >&2; exit 2; }
[[ $preload =~ ^[0-9]+$ ]] || { echo "loadtest: -m needs a number of metrics" >&2; exit 2; }
all_endpoints=(root update_url update_json update_counter updates_100 updates_1000 value_url value_json)
[[ ${#endpoints[@]} -gt 0 ]] || endpoints=("${all_endpoints[@]}")

build_dir=${BUILD_DIR:-$root/build-release}
server_bin=${METRICS_SERVER:-$build_dir/src/server/metrics-server}
trivial_bin=${TRIVIAL_SERVER:-$build_dir/bench/trivial-server}
server_cpu=${SERVER_CPU:-1}
client_cpu=${CLIENT_CPU:-0}
port=${PORT:-28080}
trivial_port=${TRIVIAL_PORT:-28081}
warmup=${WARMUP:-1}
lua_dir=$root/bench/wrk

if ! command -v wrk >/dev/null; then
    echo "loadtest: installing wrk" >&2
    apt-get install -y -qq wrk >/dev/null
fi
if [[ -z ${METRICS_SERVER:-} || -z ${TRIVIAL_SERVER:-} ]]; then
    echo "loadtest: building metrics-server and trivial-server in ${build_dir#"$root"/}" >&2
    "$root/tools/bench_build.sh" "$build_dir" src/server/metrics-server bench/trivial-server ||
        { echo "loadtest: the build failed" >&2; exit 1; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the command
# name in parentheses may contain spaces, so count from after it).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

port_free() {
    if [[ -n $(ss -Htln "sport = :$1") ]]; then
        echo "loadtest: port $1 is already in use (set PORT / TRIVIAL_PORT)" >&2
        exit 1
    fi
}

# wait_ready PID PORT: the process we started answers on the port.
wait_ready() {
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || { echo "loadtest: the server exited at start:" >&2; cat "$work"/*.log >&2; exit 1; }
        curl -s -o /dev/null "http://127.0.0.1:$2/" && return 0
        sleep 0.05
    done
    echo "loadtest: nothing answers on port $2" >&2
    exit 1
}

# expect STATUS METHOD PATH [BODY]: one request that must succeed before load is applied.
expect() {
    local status=$1 method=$2 path=$3 body=${4-}
    local args=(-s -o /dev/null -w '%{http_code}' -X "$method")
    [[ -z $body ]] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
    local got
    got=$(curl "${args[@]}" "http://127.0.0.1:$port$path") || true
    if [[ $got != "$status" ]]; then
        echo "loadtest: $method $path answered $got, expected $status: refusing to time an error path" >&2
        exit 1
    fi
}

# The request of each endpoint: path, then wrk arguments.
endpoint_path() {
    case $1 in
    root) echo / ;;
    update_url) echo /update/gauge/x/1.5 ;;
    update_counter) echo /update/counter/c/1 ;;
    update_json) echo /update/ ;;
    updates_100 | updates_1000) echo /updates/ ;;
    value_url) echo /value/gauge/x ;;
    value_json) echo /value/ ;;
    *) echo "loadtest: unknown endpoint $1 (one of: ${all_endpoints[*]})" >&2; exit 2 ;;
    esac
}
endpoint_script() {
    case $1 in
    update_url | update_counter) echo -s "$lua_dir/update_url.lua" ;;
    update_json) echo -s "$lua_dir/update_json.lua" ;;
    updates_100) echo -s "$lua_dir/updates.lua" ;;
    updates_1000) echo -s "$lua_dir/updates.lua" ;;
    value_json) echo -s "$lua_dir/value_json.lua" ;;
    esac
}
endpoint_args() {
    case $1 in
    updates_100) echo -- 100 ;;
    updates_1000) echo -- 1000 ;;
    esac
}

# run_load SERVER_NAME PID PORT ENDPOINT RUN: warm-up, then one measured wrk run; keeps wrk's
# output and the server's CPU ticks for the report.
run_load() {
    local name=$1 pid=$2 p=$3 ep=$4 run=$5
    local url script args
    url="http://127.0.0.1:$p$(endpoint_path "$ep")"
    read -r -a script <<<"$(endpoint_script "$ep")"
    read -r -a args <<<"$(endpoint_args "$ep")"
    if [[ $warmup != 0 ]]; then
        taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${warmup}s" "${script[@]}" "$url" "${args[@]}" >/dev/null
    fi
    local before after
    before=$(cpu_ticks "$pid")
    taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"${duration}s" --latency "${script[@]}" "$url" "${args[@]}" \
        >"$work/$name.$ep.$run.wrk"
    after=$(cpu_ticks "$pid")
    echo "$((after - before)) $(rss_kib "$pid")" >"$work/$name.$ep.$run.cpu"
    printf 'loadtest: %-8s %-13s %s\n' "$name" "$ep" "$(grep -m1 'Requests/sec' "$work/$name.$ep.$run.wrk")" >&2
}

stop() {
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
    pids=()
}

port_free "$port"
port_free "$trivial_port"

# Ours: memory storage without snapshots (or durable, with -i), no access log, one I/O thread, pinned.
storage_args=(-f=)
[[ -z $interval ]] || storage_args=(-f "$work/db.json" -i "$interval")
METRICS_LOG_LEVEL=info taskset -c "$server_cpu" "$server_bin" -a "127.0.0.1:$port" -access-log=false "${storage_args[@]}" \
    -threads 1 2>"$work/server.log" &
ours=$!
pids=("$ours")
wait_ready "$ours" "$port"
if [[ $preload -gt 0 ]]; then
    echo "loadtest: storing $preload counters" >&2
    "$python" - "$port" "$preload" <<'EOF'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
for start in range(0, n, 10000):
    body = "[" + ",".join('{"id":"stored%d","type":"counter","delta":1}' % i for i in range(start, min(n, start + 10000))) + "]"
    c.request("POST", "/updates/", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("loadtest: storing metrics: POST /updates/ answered %d" % r.status)
EOF
fi
# A small fixed state: GET / lists these ten metrics, updates hit existing names after warm-up.
for i in $(seq 8); do expect 200 POST "/update/gauge/page$i/$i.5"; done
expect 200 POST /update/counter/c/1
for ep in "${endpoints[@]}"; do
    case $ep in
    root) expect 200 GET / ;;
    update_url) expect 200 POST /update/gauge/x/1.5 ;;
    update_counter) expect 200 POST /update/counter/c/1 ;;
    update_json) expect 200 POST /update/ '{"id":"x","type":"gauge","value":1.5}' ;;
    updates_100 | updates_1000) expect 200 POST /updates/ '[{"id":"batch1","type":"gauge","value":1.25}]' ;;
    value_url) expect 200 POST /update/gauge/x/1.5; expect 200 GET /value/gauge/x ;;
    value_json) expect 200 POST /update/gauge/x/1.5; expect 200 POST /value/ '{"id":"x","type":"gauge"}' ;;
    esac
done
for ep in "${endpoints[@]}"; do
    for run in $(seq "$runs"); do run_load ours "$ours" "$port" "$ep" "$run"; done
done
stop "$ours"

taskset -c "$server_cpu" "$trivial_bin" -a "127.0.0.1:$trivial_port" -threads 1 2>"$work/trivial.log" &
trivial=$!
pids=("$trivial")
wait_ready "$trivial" "$trivial_port"
for ep in "${endpoints[@]}"; do
    for run in $(seq "$runs"); do run_load trivial "$trivial" "$trivial_port" "$ep" "$run"; done
done
stop "$trivial"

mkdir -p "$(dirname "$out")"
"$python" - "$work" "$out" "$(getconf CLK_TCK)" "$duration" "$connections" "$client_cpu" "$server_cpu" \
    "$runs" "${interval:-none}" "$preload" "${endpoints[@]}" <<'EOF'
import json, os, re, sys

work, out, clk_tck, duration, connections = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
client_cpu, server_cpu, runs = sys.argv[6], sys.argv[7], int(sys.argv[8])
interval, preload = sys.argv[9], int(sys.argv[10])
endpoints = sys.argv[11:]
metrics_per_request = {"updates_100": 100, "updates_1000": 1000, "update_url": 1, "update_json": 1, "update_counter": 1}
units = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

def millis(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * units[m.group(2)]

def parse_run(server, ep, run):
    text = open(f"{work}/{server}.{ep}.{run}.wrk").read()
    ticks, rss = open(f"{work}/{server}.{ep}.{run}.cpu").read().split()
    requests, value, unit = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text).groups()
    seconds = millis(value + unit) / 1e3
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", text, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    cpu = int(ticks) / clk_tck
    n = int(requests)
    per_request = metrics_per_request.get(ep, 0)
    return {
        "endpoint": ep, "server": server, "requests": n, "seconds": seconds,
        "requests_per_s": n / seconds, "metrics_per_s": n * per_request / seconds,
        "server_cpu_s": cpu, "requests_per_cpu_s": n / cpu if cpu else None,
        "metrics_per_cpu_s": n * per_request / cpu if cpu else None,
        "p50_ms": millis(latency["50"]), "p99_ms": millis(latency["99"]),
        "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": socket.group(1) if socket else "",
        "server_rss_kib": int(rss),
    }

def parse(server, ep):
    # The run with the median requests per server CPU-second stands for all of them.
    all_runs = sorted((parse_run(server, ep, k) for k in range(1, runs + 1)),
                      key=lambda r: r["requests_per_cpu_s"] or 0)
    row = dict(all_runs[(len(all_runs) - 1) // 2])
    row["runs"] = [r["requests_per_cpu_s"] for r in all_runs]
    return row

rows = [parse(s, ep) for ep in endpoints for s in ("ours", "trivial")]
by = {(r["server"], r["endpoint"]): r for r in rows}
ratios = []
for ep in endpoints:
    o, t = by[("ours", ep)], by[("trivial", ep)]
    ratio = lambda a, b: a / b if a and b else None
    ratios.append({
        "endpoint": ep,
        "requests_per_s": ratio(o["requests_per_s"], t["requests_per_s"]),
        "requests_per_cpu_s": ratio(o["requests_per_cpu_s"], t["requests_per_cpu_s"]),
        "p99": ratio(o["p99_ms"], t["p99_ms"]),
    })

def num(v, fmt="{:,.0f}"):
    return "-" if v is None else fmt.format(v)

print(f"\nwrk: 1 thread on CPU {client_cpu}, {connections} keep-alive connections, {duration} s per run; "
      f"servers: 1 I/O thread on CPU {server_cpu}"
      + (f"; median of {runs} runs by req/CPU-s" if runs > 1 else "")
      + (f"; ours durable with -i {interval}" if interval != "none" else "")
      + (f", {preload:,} counters stored" if preload else ""))
print(f"{'endpoint':13} {'server':8} {'req/s':>10} {'metrics/s':>12} {'req/CPU-s':>11} {'metrics/CPU-s':>14} "
      f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
for r in rows:
    errors = r["non_2xx"] + (0 if not r["socket_errors"] else sum(int(x) for x in re.findall(r"\d+", r["socket_errors"])))
    print(f"{r['endpoint']:13} {r['server']:8} {num(r['requests_per_s']):>10} "
          f"{num(r['metrics_per_s']) if r['metrics_per_s'] else '-':>12} {num(r['requests_per_cpu_s']):>11} "
          f"{num(r['metrics_per_cpu_s']) if r['metrics_per_cpu_s'] else '-':>14} "
          f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {errors:>6}")
print(f"\n{'ours / trivial':13} {'req/s':>8} {'req/CPU-s':>10} {'p99':>8}")
for r in ratios:
    print(f"{r['endpoint']:13} {num(r['requests_per_s'], '{:.2f}'):>8} {num(r['requests_per_cpu_s'], '{:.2f}'):>10} "
          f"{num(r['p99'], '{:.2f}'):>8}")
for ep in ("update_url", "value_url"):
    r = next((x for x in ratios if x["endpoint"] == ep), None)
    if r and r["requests_per_cpu_s"] is not None and r["p99"] is not None:
        ok = r["requests_per_cpu_s"] >= 0.8 and r["p99"] <= 2.0
        print(f"target {ep}: req/CPU-s >= 0.80x and p99 <= 2x trivial: {'met' if ok else 'MISSED'}")
u = by.get(("ours", "updates_1000"))
if u and u["metrics_per_cpu_s"]:
    ok = u["metrics_per_cpu_s"] >= 10e6
    spread = ""
    if runs > 1:
        each = ", ".join(f"{x * 1000 / 1e6:.2f}" for x in u["runs"] if x)
        spread = f" (runs: {each})"
    print(f"target updates_1000: >= 10M metrics per server CPU-second: {u['metrics_per_cpu_s'] / 1e6:.2f}M{spread}, "
          f"{'met' if ok else 'MISSED'}")

fsyncs = None
if interval != "none":
    # The durable store's last words: "write-ahead log: C changes appended, S fdatasyncs since start".
    m = re.search(r"write-ahead log: (\d+) changes appended, (\d+) fdatasyncs", open(f"{work}/server.log").read())
    if m:
        changes, fsyncs = int(m.group(1)), int(m.group(2))
        # Without the stored counters (one batch of 10,000 per fdatasync with -i 0); warm-ups,
        # checks and compactions stay in.
        batches = -(-preload // 10000) if interval == "0" else 0
        changes, fsyncs = changes - preload, fsyncs - batches
        print(f"fsyncs: {fsyncs:,} for {changes:,} updates: {fsyncs / max(1, changes):.4f} per update")

with open(out, "w") as f:
    json.dump({"duration_s": float(duration), "connections": connections, "clk_tck": clk_tck,
               "interval": None if interval == "none" else int(interval), "stored_metrics": preload, "fsyncs": fsyncs,
               "client_cpu": int(client_cpu), "server_cpu": int(server_cpu), "runs": runs,
               "results": rows, "ratios": ratios}, f, indent=2)
print(f"\nwritten {out}")
EOF
