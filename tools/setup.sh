#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds, tests and runs with (only what is missing).
# Usage: tools/setup.sh [--bench | --test]
#   --bench  adds wrk, heaptrack, Google Benchmark's compare.py, valgrind and collectd (the measuring
#            tools: tools/agent_order.py runs the agent under valgrind, tools/agent_vs_collectd.py
#            beside collectd)
#   --test   --bench, plus what the whole test suite drives: Chromium (headless) with Node.js and
#            the npm packages of test/browser (puppeteer-core, which downloads no browser), and
#            promtool (Debian's prometheus) to check /metrics
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ clang lld meson ninja-build pkg-config git
          libasio-dev libsimdjson-dev libdeflate-dev libsodium-dev libfmt-dev doctest-dev libbenchmark-dev libpq-dev
          postgresql python3 curl procps)
mode=${1:-}
if [[ $mode == --bench || $mode == --test ]]; then
    packages+=(wrk heaptrack libbenchmark-tools python3-scipy python3-numpy python3-pandas python3-matplotlib
               valgrind collectd-core libmnl0)  # libmnl0: collectd's processes plugin
fi
if [[ $mode == --test ]]; then
    packages+=(chromium fonts-dejavu-core prometheus)
    # Node.js from Debian unless one is installed already (another source's nodejs ships its own
    # npm, and Debian's npm would conflict with it).
    if ! command -v node >/dev/null; then
        packages+=(nodejs npm)
    elif ! command -v npm >/dev/null; then
        packages+=(npm)
    fi
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser test's packages, exactly as locked, unless already installed from this lock file.
if [[ $mode == --test ]]; then
    lock=test/browser/package-lock.json
    if ! cmp -s "$lock" test/browser/node_modules/.installed-lock.json 2>/dev/null; then
        echo "setup: npm ci in test/browser" >&2
        (cd test/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        cp "$lock" test/browser/node_modules/.installed-lock.json
    fi
fi
