#!/usr/bin/python3
"""Writes the agent's link order (src/agent/agent.order): the symbols a real run touches, in the
order it first touches them.

Each given metrics-agent binary runs under Valgrind's lackey, which reports every instruction
fetch and data access, for --seconds against a loopback receiver (200 to every report),
with a 1 s poll and a 2 s report interval, then stops on SIGTERM as a service does. Every address
inside the binary is named by the symbol that holds it (`nm`); the output lists the functions in
order of first use, then the constants and data. Valgrind gives its client no vDSO, so the code
that only a native run executes (the vDSO's set-up in a static binary) is found with `perf` where
it works: the binary runs natively once more and every function whose page it faults on is added.
Several binaries (the static and the default build) give one list: the first binary's order,
then what only the next ones touched.

lld links the agent with this list (`--symbol-ordering-file`, src/agent/meson.build): the code
and constants that run sit together at the start of their sections, so the kernel's fault-around,
which maps up to 64 KiB of page cache around each page fault, maps far less of what never runs
(docs/PROFILING.md, section 9). A name the binary lacks is skipped by lld, so an old list only
orders less; rerun this after changing what the agent runs.

Usage: tools/agent_order.py [--seconds N] [-o FILE] AGENT_BINARY...
  e.g. tools/agent_order.py -o src/agent/agent.order b-static/src/agent/metrics-agent \\
           b-release/src/agent/metrics-agent
Needs valgrind (tools/setup.sh --bench).
"""
import argparse
import bisect
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_vs_collectd import Accept, free_port, start_receiver  # noqa: E402  the same receiver

SYMBOL_TYPES = set("tTwWiIrRdDvVgGsS")  # code, constants, initialised data (not bss)


def symbols(binary):
    """(start, size, name) of every sized symbol, sorted by start."""
    out = subprocess.run(["nm", "-S", "-n", "--defined-only", binary], capture_output=True, text=True,
                         check=True).stdout
    table = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in SYMBOL_TYPES and int(parts[1], 16) > 0:
            table.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    table.sort()
    return table


def is_pie(binary):
    with open(binary, "rb") as f:
        header = f.read(18)
    return header[:4] == b"\x7fELF" and int.from_bytes(header[16:18], "little") == 3  # ET_DYN


def load_bias(pid, binary):
    """Where a position-independent `binary` is mapped in process `pid` (0 for a fixed one)."""
    if not is_pie(binary):
        return 0
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.realpath(parts[5]) == real and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    raise RuntimeError(f"{binary} is not mapped in process {pid}")


def agent_argv(binary, port):
    return [binary, "-a", f"127.0.0.1:{port}", "-p", "1", "-r", "2"]


def run_for(argv, seconds, what, each_half_second=lambda pid: None):
    """Runs `argv` for `seconds`, calling `each_half_second(pid)` meanwhile, then stops it with
    SIGTERM as a service manager does."""
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if child.poll() is not None:
                sys.exit(f"agent_order: {what} exited early with {child.returncode}")
            each_half_second(child.pid)
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def trace(binary, port, seconds, work):
    """Runs `binary` under lackey; returns its trace file and the binary's load bias."""
    log = os.path.join(work, "lackey.log")
    bias = []

    def find_bias(pid):
        if not bias:
            try:
                bias.append(load_bias(pid, binary))
            except (RuntimeError, OSError):
                pass  # valgrind has not mapped the client yet

    run_for(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}", *agent_argv(binary, port)],
            seconds, f"{binary} under valgrind (log: {log})", find_bias)
    if not bias:
        sys.exit(f"agent_order: could not find where {binary} was loaded")
    return log, bias[0]


# perf script -F addr,ip,sym,dso: the faulting address, then the instruction, each with its
# symbol and object.
FAULT_LINE = re.compile(r"^\s*([0-9a-f]+) \S+ \((.*?)\)\s+([0-9a-f]+) (\S+) \((.*?)\)$")


def native_faults(binary, port, seconds, work):
    """Functions of `binary` that take a page fault on their own code in a native run (perf)."""
    if not shutil.which("perf"):
        print("agent_order: perf is missing: the native pass is skipped", file=sys.stderr)
        return []
    data = os.path.join(work, "faults.data")
    run_for(["perf", "record", "-q", "-c", "1", "-e", "page-faults", "-d", "-o", data, "--",
                      *agent_argv(binary, port)], seconds, "perf record")
    if not os.path.exists(data):
        print("agent_order: perf could not record page faults here: the native pass is skipped",
              file=sys.stderr)
        return []
    out = subprocess.run(["perf", "script", "-i", data, "-F", "addr,ip,sym,dso", "--no-demangle"],
                         capture_output=True, text=True).stdout
    real = os.path.realpath(binary)
    names = []
    for line in out.splitlines():
        m = FAULT_LINE.match(line)
        if m and m.group(1) == m.group(3) and os.path.realpath(m.group(5)) == real and m.group(4) != "[unknown]":
            names.append(m.group(4))
    return names


def first_uses(log, bias, table):
    """Names of the symbols the trace touches: functions in order of first use, then data."""
    starts = [start for start, _, _ in table]
    code, data, seen = [], [], set()
    with open(log) as f:
        for line in f:
            kind, _, rest = line.strip().partition(" ")
            if kind not in ("I", "L", "S", "M"):
                continue
            try:
                address = int(rest.strip().split(",")[0], 16) - bias
            except ValueError:
                continue
            i = bisect.bisect_right(starts, address) - 1
            if i < 0:
                continue
            start, size, name = table[i]
            if address >= start + size or name in seen:
                continue
            seen.add(name)
            (code if kind == "I" else data).append(name)
    return code, data


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="run time under valgrind (default 30)")
    parser.add_argument("-o", "--output", default="src/agent/agent.order", help="the list to write")
    parser.add_argument("agents", nargs="+", metavar="AGENT_BINARY")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("agent_order: valgrind is missing (tools/setup.sh --bench installs it)")
    for binary in args.agents:
        if not os.access(binary, os.X_OK):
            parser.error(f"{binary}: not an executable")

    port = free_port(socket.SOCK_STREAM)
    receiver = start_receiver(port)
    order, seen = [], set()
    work = tempfile.mkdtemp(prefix="metrics-agent-order.")
    try:
        for binary in args.agents:
            log, bias = trace(binary, port, args.seconds, work)
            code, data = first_uses(log, bias, symbols(binary))
            native = [name for name in native_faults(binary, port, min(args.seconds, 10), work)
                      if name not in code]
            print(f"agent_order: {binary}: {len(code)} functions, {len(data)} data symbols touched;"
                  f" {len(native)} more functions in a native run", file=sys.stderr)
            for name in code + native + data:
                if name not in seen:
                    seen.add(name)
                    order.append(name)
            os.remove(log)
    finally:
        receiver.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    if Accept.requests == 0:
        sys.exit("agent_order: no report reached the receiver: the run did not exercise the agent")
    with open(args.output, "w") as f:
        f.write("".join(name + "\n" for name in order))
    print(f"agent_order: {len(order)} symbols written to {args.output} ({Accept.requests} reports received)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
