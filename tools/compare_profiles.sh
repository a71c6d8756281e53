#!/usr/bin/env bash
# Compares two saved profiles of tools/run_benchmarks.sh.
#
#   tools/compare_profiles.sh [--plot FILE.svg|FILE.png] [--no-heap] BASE RESULT
#
# BASE and RESULT are profile names (profiles/BASE.json ..., or under PROFILES_DIR) or paths to
# Google Benchmark JSON.
# Prints
#   1. time per benchmark with Google Benchmark's compare.py (Debian's libbenchmark-tools),
#      including its Mann-Whitney U test over the repetitions (p < 0.05: the change is real);
#   2. allocations and bytes per iteration, base -> result (deterministic counts, no test needed);
#   3. the heap profile difference of the server workload (heaptrack_print --diff).
# --plot writes the relative time and allocation changes as a bar chart (matplotlib; the format
# follows the extension).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
profiles=${PROFILES_DIR:-$root/profiles}
python=/usr/bin/python3  # Debian's: scipy and numpy for compare.py's U test
plot=
heap=1
positional=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --plot) plot=${2:?--plot needs a file}; shift 2 ;;
    --plot=*) plot=${1#--plot=}; shift ;;
    --no-heap) heap=0; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -eq 2 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }

profile_json() {
    if [[ -f $1 ]]; then echo "$1"; else echo "$profiles/$1.json"; fi
}
base=$(profile_json "${positional[0]}")
result=$(profile_json "${positional[1]}")
for f in "$base" "$result"; do
    [[ -f $f ]] || { echo "compare_profiles: no profile $f (run tools/run_benchmarks.sh first)" >&2; exit 1; }
done

compare_py=$(dpkg -L libbenchmark-tools 2>/dev/null | grep '/compare.py$' | head -1 || true)
if [[ -z $compare_py ]] || ! "$python" -c 'import scipy, numpy' 2>/dev/null; then
    echo "compare_profiles: installing libbenchmark-tools python3-scipy python3-numpy" >&2
    apt-get install -y -qq libbenchmark-tools python3-scipy python3-numpy >/dev/null
    compare_py=$(dpkg -L libbenchmark-tools | grep '/compare.py$' | head -1)
fi

echo "== time (compare.py; U test over the repetitions)"
color=()
[[ -t 1 ]] || color=(--no-color)
"$python" "$compare_py" "${color[@]}" --display_aggregates_only benchmarks "$base" "$result"

echo
echo "== allocations per iteration (mean over repetitions)"
"$python" - "$base" "$result" "$plot" <<'EOF'
import json, sys

base_path, result_path, plot = sys.argv[1], sys.argv[2], sys.argv[3]

def means(path):
    """name -> (real ns, allocs/iter, bytes/iter, CPU ns) from the mean aggregates, or the single run."""
    out = {}
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    for b in json.load(open(path))["benchmarks"]:
        single = b.get("run_type") == "iteration" and b.get("repetitions", 1) <= 1
        if not (b.get("aggregate_name") == "mean" or single):
            continue
        name = b.get("run_name", b["name"])
        unit = scale[b.get("time_unit", "ns")]
        out[name] = (b["real_time"] * unit, b.get("allocs/iter"), b.get("bytes/iter"), b["cpu_time"] * unit)
    return out

base, result = means(base_path), means(result_path)
names = [n for n in base if n in result]

def cell(a, b):
    if a is None or b is None:
        return "-"
    # Counts below 0.01 per iteration are warm-up allocations spread over the loop: noise.
    change = "" if round(a, 2) == round(b, 2) else (f"({(b - a) / a:+.0%})" if a >= 0.01 else "(new)")
    return f"{a:10.2f} -> {b:<10.2f}{change:>7}"

print(f"{'benchmark':60} {'allocs/iter':^31} {'bytes/iter':^31}")
for n in names:
    print(f"{n:60} {cell(base[n][1], result[n][1]):31} {cell(base[n][2], result[n][2]):31}")
for side, only in (("base", sorted(set(base) - set(result))), ("result", sorted(set(result) - set(base)))):
    if only:
        shown = ", ".join(only[:4]) + (", ..." if len(only) > 4 else "")
        print(f"{len(only)} benchmarks only in {side} (not compared): {shown}")

if plot:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rel(a, b):
        return 100.0 * (b - a) / a if a else 0.0

    # CPU time: on a shared machine wall time mostly measures the neighbours.
    time = [rel(base[n][3], result[n][3]) for n in names]
    def alloc_change(a, b):
        # The same noise rule as the table: warm-up allocations are not a change.
        if a is None or b is None or round(a, 2) == round(b, 2) or a < 0.01:
            return 0.0
        return rel(a, b)

    allocs = [alloc_change(base[n][1], result[n][1]) for n in names]
    fig, axes = plt.subplots(1, 2, figsize=(14, max(4, 0.28 * len(names) + 1.5)), sharey=True)
    for ax, values, title in ((axes[0], time, "CPU time per iteration, % change"),
                              (axes[1], allocs, "allocations per iteration, % change")):
        colors = ["tab:green" if v < 0 else "tab:red" for v in values]
        ax.barh(range(len(names)), values, color=colors)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)))
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"{base_path.rsplit('/', 1)[-1]} -> {result_path.rsplit('/', 1)[-1]} (negative is better)")
    fig.tight_layout()
    fig.savefig(plot)
    print(f"\nplot written to {plot}")
EOF

if [[ $heap == 1 ]]; then
    heap_file() { ls "$profiles/$1.heaptrack".* 2>/dev/null | grep -E '\.(zst|gz)$' | head -1 || true; }
    base_heap=$(heap_file "${positional[0]}")
    result_heap=$(heap_file "${positional[1]}")
    echo
    if [[ -n $base_heap && -n $result_heap ]]; then
        echo "== heap profile of the server workload (heaptrack)"
        totals='^(calls to allocation functions|temporary memory allocations|peak heap memory consumption):'
        for f in "$base_heap" "$result_heap"; do
            echo "${f#"$root"/}:"
            heaptrack_print -f "$f" --print-peaks=0 --print-allocators=0 --print-temporary=0 2>/dev/null |
                grep -E "$totals" | sed 's/^/    /'
        done
        echo "result minus base, the call sites whose allocation counts changed most (heaptrack_print --diff):"
        heaptrack_print -f "$result_heap" -d "$base_heap" --print-peaks=0 --print-temporary=0 -n 5 -s 1 2>/dev/null |
            awk '/^MOST CALLS/ { p = 1 } /^(PEAK|MOST TEMPORARY|MOST MEMORY|total runtime)/ { p = 0 } p && NF' | head -n 60
        heaptrack_print -f "$result_heap" -d "$base_heap" --print-peaks=0 --print-allocators=0 --print-temporary=0 \
            2>/dev/null | grep -E "$totals" | sed 's/^/net: /'
    else
        echo "== no heap profiles for both ${positional[0]} and ${positional[1]} (profiles/NAME.heaptrack.zst)"
    fi
fi
