#!/usr/bin/env bash
# Configures (once) and builds one build directory.
# Usage: tools/build.sh DIR [meson options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
if [[ ! -f "$dir/build.ninja" ]]; then
    meson setup "$dir" --wrap-mode=nodownload "$@" >/dev/null
fi
ninja -C "$dir" -j "$(nproc)" >/dev/null || ninja -C "$dir" -j 1
