#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds, tests and runs with (only what is missing).
# Usage: tools/setup.sh [--bench]   (--bench adds wrk, heaptrack and Google Benchmark's compare.py)
set -euo pipefail

packages=(g++ clang meson ninja-build pkg-config git
          libasio-dev libsimdjson-dev libdeflate-dev libsodium-dev libfmt-dev doctest-dev libbenchmark-dev libpq-dev
          postgresql python3 curl procps)
if [[ "${1:-}" == "--bench" ]]; then
    packages+=(wrk heaptrack libbenchmark-tools python3-scipy python3-numpy python3-pandas python3-matplotlib)
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
