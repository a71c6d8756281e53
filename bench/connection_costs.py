#!/usr/bin/python3
"""What connections cost a running metrics-server (issue 20), read from /proc/PID: start the
server yourself (any build, so that two builds compare), then

    connection_costs.py idle PID PORT [N]         resident memory per idle keep-alive connection
                                                 (each made one small request first)
    connection_costs.py bombs PID PORT [N]        resident memory after N connections that each
                                                 sent a gzip bomb inflating past 32 MiB (413),
                                                 all still open
    connection_costs.py listings PID PORT [N]     resident memory after N connections that each
                                                 fetched /metrics once from a store of 200k
                                                 metrics, all still open
    connection_costs.py pipeline PID PORT [N]     server CPU (utime+stime) for one 8 MiB POST
                                                 followed in the same stream by N `GET /x`
                                                 (the server needs -max-body-bytes above 8 MiB)

Each prints one line. Loopback only; every socket has a timeout.
"""
import gzip
import os
import socket
import sys
import threading
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def read_answer(f):
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    f.read(length)
    return int(status.split()[1])


def settle(pid):
    time.sleep(1.0)  # let the server finish freeing before reading its memory
    return rss(pid)


def idle(pid, port, n):
    before = settle(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n")
        read_answer(s.makefile("rb"))
        socks.append(s)
    after = settle(pid)
    print(f"idle: {n} connections: RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, "
          f"{(after - before) / n / 1e3:.2f} KB each")
    for s in socks:
        s.close()


def bombs(pid, port, n):
    packed = gzip.compress(b"\0" * (33 << 20), 9)
    request = (b"POST /update/ HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
               b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)) + packed
    before = settle(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(request)
        status = read_answer(s.makefile("rb"))
        assert status == 413, status
        socks.append(s)
    after = settle(pid)
    print(f"bombs: {n} connections: RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    for s in socks:
        s.close()


def listings(pid, port, n):
    import json
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        f = s.makefile("rb")
        for start in range(0, 200000, 10000):
            body = json.dumps([{"id": f"metric.{i}", "type": "gauge", "value": i + 0.5}
                               for i in range(start, start + 10000)]).encode()
            s.sendall(b"POST /updates/ HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            assert read_answer(f) == 200
    before = settle(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_answer(s.makefile("rb")) == 200
        socks.append(s)
    after = settle(pid)
    print(f"listings: {n} connections after /metrics of 200k metrics: RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    for s in socks:
        s.close()


def pipeline(pid, port, n):
    body = b" " * (8 << 20)
    data = (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body +
            b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n" * n)
    cpu0 = cpu_seconds(pid)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        f = s.makefile("rb")
        for _ in range(n + 1):
            assert read_answer(f) == 404
        sender.join()
    cpu1 = cpu_seconds(pid)
    print(f"pipeline: 8 MiB POST + {n} GET: server CPU {cpu1 - cpu0:.2f} s")


if __name__ == "__main__":
    what, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else {"idle": 5000, "bombs": 40, "listings": 40, "pipeline": 250000}[what]
    {"idle": idle, "bombs": bombs, "listings": listings, "pipeline": pipeline}[what](pid, port, count)
