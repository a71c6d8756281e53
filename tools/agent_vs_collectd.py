#!/usr/bin/python3
"""metrics-agent builds side by side with collectd, on loopback only, for one run.

Starts a receiver on 127.0.0.1 (a free port), each given metrics-agent reporting to it, and
collectd with the same poll interval (cpu, memory and processes plugins, network plugin sending to
127.0.0.1), all at once. After a warm-up it samples every process each minute and prints, per
process: CPU seconds per hour over the measured span, and the last and highest RSS, PSS, USS
(smaps_rollup Private_Clean + Private_Dirty) and anonymous memory; then the binaries' sizes.

Pages that two processes map count in neither one's USS, so each agent runs from its own copy of
its binary and of every shared library it loads but glibc's (which every process on a host
maps): the agent is their only user, as on a monitored host. A label ending in `@cxx` keeps the
system's libstdc++ and libgcc_s instead (a host where other C++ programs run; every such agent of
the run shares them).
The receiver is this script's own HTTP server (200 to every request), not metrics-server: a server
on the same host would map the same libfmt, libsimdjson, libsodium and libdeflate as a dynamically
linked agent, and pages two processes map are not in either one's USS. On a monitored host the
agent is their only user. --server BIN runs a metrics-server instead.

Usage: tools/agent_vs_collectd.py [--seconds N] [--warmup N] [--server BIN] LABEL=AGENT_BINARY...
  e.g. tools/agent_vs_collectd.py --seconds 1200 default=b-release/src/agent/metrics-agent \\
           static=b-static/src/agent/metrics-agent
Needs collectd (tools/setup.sh --bench installs collectd-core, and libmnl0 for its processes
plugin). Output: a Markdown table on stdout.
"""
import argparse
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

POLL_INTERVAL = 2     # seconds: the agent's default -p, collectd's Interval
REPORT_INTERVAL = 10  # seconds: the agent's default -r
COLLECTD = "/usr/sbin/collectd"
COLLECTD_PLUGINS = "/usr/lib/collectd"
PLUGINS = ("logfile", "cpu", "memory", "processes", "network")


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Accept(http.server.BaseHTTPRequestHandler):
    """Reads a request's body and answers 200 with none: the agent's reports go nowhere."""
    protocol_version = "HTTP/1.1"

    requests = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Accept.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver(port):
    """Serves Accept on 127.0.0.1:`port` from a daemon thread; returns the server."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", port), Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


GLIBC = ("libc.so", "libm.so", "ld-linux", "libpthread.so", "libdl.so", "librt.so", "linux-vdso")
CXX_RUNTIME = ("libstdc++.so", "libgcc_s.so")


def private_copy(binary, directory, share_cxx):
    """Copies `binary` and the libraries it loads (but glibc's, and the C++ runtime when
    `share_cxx`) into `directory`; returns the copy and its LD_LIBRARY_PATH."""
    os.makedirs(directory)
    copy = os.path.join(directory, os.path.basename(binary))
    shutil.copy2(binary, copy)
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for line in ldd.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            name = parts[0]
            if name.startswith(GLIBC) or (share_cxx and name.startswith(CXX_RUNTIME)):
                continue
            shutil.copy2(parts[2], os.path.join(directory, name))
    return copy, directory


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    """RSS, PSS, USS and anonymous memory in KiB, from /proc/PID/smaps_rollup."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1])
    return {"RSS": values["Rss"], "PSS": values["Pss"],
            "USS": values["Private_Clean"] + values["Private_Dirty"], "Anon": values["Anonymous"]}


def collectd_config(work, udp_port):
    return f"""Interval {POLL_INTERVAL}
BaseDir "{work}"
PIDFile "{work}/collectd.pid"
PluginDir "{COLLECTD_PLUGINS}"
TypesDB "/usr/share/collectd/types.db"
FQDNLookup false
Hostname "bench"
LoadPlugin logfile
<Plugin logfile>
  LogLevel "info"
  File "{work}/collectd.log"
</Plugin>
LoadPlugin cpu
LoadPlugin memory
LoadPlugin processes
<Plugin processes>
  Process "collectd"
</Plugin>
LoadPlugin network
<Plugin network>
  Server "127.0.0.1" "{udp_port}"
</Plugin>
"""


def sizes(path):
    """File size and the text + data + bss of `size`, in bytes."""
    out = subprocess.run(["size", path], capture_output=True, text=True, check=True).stdout.split("\n")[1].split()
    return os.path.getsize(path), int(out[0]) + int(out[1]) + int(out[2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=1200, help="measured span (default 1200)")
    parser.add_argument("--warmup", type=int, default=60, help="seconds before the first sample")
    parser.add_argument("--server", help="a metrics-server binary to report to instead of the built-in receiver")
    parser.add_argument("agents", nargs="+", metavar="LABEL=BINARY")
    args = parser.parse_args()
    agents = []
    for spec in args.agents:
        label, _, binary = spec.partition("=")
        if not binary or not os.access(binary, os.X_OK):
            parser.error(f"{spec}: not LABEL=executable")
        agents.append((label, os.path.abspath(binary)))
    if not os.access(COLLECTD, os.X_OK):
        sys.exit("agent_vs_collectd: collectd is missing (tools/setup.sh --bench installs it)")

    work = tempfile.mkdtemp(prefix="metrics-vs-collectd.")
    children = []

    def start(name, argv, env=None):
        log = open(os.path.join(work, name + ".log"), "w")
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env)
        children.append((name, child))
        return child

    try:
        port = free_port(socket.SOCK_STREAM)
        if args.server:
            start("server", [args.server, "-a", f"127.0.0.1:{port}", "-f", "", "-access-log=false"])
        else:
            start_receiver(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("agent_vs_collectd: the server did not start")
                time.sleep(0.2)
        measured = []
        for index, (label, binary) in enumerate(agents):
            copy, libs = private_copy(binary, os.path.join(work, f"agent{index}"), label.endswith("@cxx"))
            env = dict(os.environ, LD_LIBRARY_PATH=libs)
            child = start(f"agent{index}", [copy, "-a", f"127.0.0.1:{port}", "-p", str(POLL_INTERVAL),
                                            "-r", str(REPORT_INTERVAL)], env)
            measured.append((label, binary, child))
        conf = os.path.join(work, "collectd.conf")
        with open(conf, "w") as f:
            f.write(collectd_config(work, free_port(socket.SOCK_DGRAM)))
        collectd = start("collectd", [COLLECTD, "-C", conf, "-f"])
        measured.append(("collectd", COLLECTD, collectd))

        print(f"agent_vs_collectd: {len(measured)} processes, warm-up {args.warmup} s, then {args.seconds} s;"
              f" logs in {work}", file=sys.stderr)
        time.sleep(args.warmup)
        for name, child in children:
            if child.poll() is not None:
                sys.exit(f"agent_vs_collectd: {name} exited with {child.returncode} (log in {work})")
        t0 = time.monotonic()
        cpu0 = {label: cpu_seconds(child.pid) for label, _, child in measured}
        peak = {label: memory_kib(child.pid) for label, _, child in measured}
        last = dict(peak)
        while time.monotonic() - t0 < args.seconds:
            time.sleep(min(60, max(0.0, args.seconds - (time.monotonic() - t0))))
            for label, _, child in measured:
                if child.poll() is not None:
                    sys.exit(f"agent_vs_collectd: {label} exited with {child.returncode} (log in {work})")
                last[label] = memory_kib(child.pid)
                peak[label] = {k: max(v, peak[label][k]) for k, v in last[label].items()}
        elapsed = time.monotonic() - t0
        cpu1 = {label: cpu_seconds(child.pid) for label, _, child in measured}
    finally:
        for _, child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {elapsed:.0f} s measured after a"
          f" {args.warmup} s warm-up; poll {POLL_INTERVAL} s, report {REPORT_INTERVAL} s; last (highest) KiB\n")
    print("| process | CPU s/hour | RSS | PSS | USS | anonymous | file bytes | text+data+bss |")
    print("|---|---|---|---|---|---|---|---|")
    for label, binary, _ in measured:
        file_bytes, image = sizes(binary)
        if label == "collectd":  # the daemon and the plugins it loads
            for plugin in PLUGINS:
                more = sizes(os.path.join(COLLECTD_PLUGINS, plugin + ".so"))
                file_bytes, image = file_bytes + more[0], image + more[1]
        cells = " | ".join(f"{last[label][k]} ({peak[label][k]})" for k in ("RSS", "PSS", "USS", "Anon"))
        rate = (cpu1[label] - cpu0[label]) / elapsed * 3600
        print(f"| {label} | {rate:.2f} | {cells} | {file_bytes} | {image} |")
    uss = last["collectd"]["USS"]
    print()
    if not args.server:
        print(f"the receiver got {Accept.requests} reports")
    for label, _, _ in measured[:-1]:
        print(f"{label}: USS {last[label]['USS'] / uss:.2f}x collectd's")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
