#!/usr/bin/python3
"""A fixed, deterministic request mix for heap profiles (tools/run_benchmarks.sh runs it against
metrics-server under heaptrack). Fixed request counts, not a fixed duration, so that two
profiles' allocation totals compare directly. Every answer must be 200: an error path is not
the workload.

    heap_workload.py PORT [SCALE]
"""
import http.client
import json
import sys

port = int(sys.argv[1])
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 1
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
json_headers = {"Content-Type": "application/json"}


def batch(n):
    return json.dumps([{"id": f"batch{i}", "type": "counter", "delta": i} if i % 2 == 0
                       else {"id": f"batch{i}", "type": "gauge", "value": i + 0.25}
                       for i in range(1, n + 1)], separators=(",", ":"))


def run(name, count, method, path, body=None, headers=None):
    for _ in range(count * scale):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"heap workload: {method} {path} answered {response.status}")
    print(f"heap workload: {name:13} {count * scale:6} requests", file=sys.stderr)


# The mix of tools/loadtest.sh: 1000 metrics exist, then each endpoint in turn.
run("seed", 1, "POST", "/updates/", batch(1000), json_headers)
run("update_url", 2000, "POST", "/update/gauge/x/1.5")
run("update_json", 2000, "POST", "/update/", '{"id":"x","type":"gauge","value":1.5}', json_headers)
run("updates_100", 200, "POST", "/updates/", batch(100), json_headers)
run("updates_1000", 20, "POST", "/updates/", batch(1000), json_headers)
run("value_url", 2000, "GET", "/value/gauge/x")
run("value_json", 2000, "POST", "/value/", '{"id":"x","type":"gauge"}', json_headers)
run("root", 50, "GET", "/")
