#!/usr/bin/env bash
# Before/after for a change: runs two builds of pipeline_bench (e.g. the commit before a change,
# built in another folder, and the working tree) on the same model and flags, alternating A, B,
# A, B, ... for ROUNDS rounds in this one command, so that both see the same machine state. Prints
# each JSON line tagged with "build": "A"|"B" and the process's peak RSS, then the median ratios
# A / B of load_s and median_ms (> 1: B is faster).
#
# Usage: bench/compare_builds.sh BENCH_A BENCH_B FLAGS...
#   FLAGS go unchanged to both (pipeline_bench's: tlcm-generate's flags plus --repeats, --warmup,
#   --steps_list). Environment: ROUNDS (default 2). Needs GNU time (Debian package `time`).
# Example (loading time of full-size SDXL from tools/make_full_size_models.py, weights cached):
#   bench/compare_builds.sh /work/build-old/bench/pipeline_bench build/bench/pipeline_bench \
#     --base_model_path /work/models/sdxl-1024 --prompt x --infer-steps 1 --resolution 256 \
#     --repeats 1 --warmup 0
set -euo pipefail
if [[ $# -lt 2 || ! -x "$1" || ! -x "$2" ]]; then
  echo "usage: bench/compare_builds.sh BENCH_A BENCH_B FLAGS... (both executable)" >&2
  exit 2
fi
[[ -x /usr/bin/time ]] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
bench_a="$1" bench_b="$2"
shift 2
rounds="${ROUNDS:-2}"
lines=()
for ((round = 1; round <= rounds; ++round)); do
  for build in A B; do
    bench="$bench_a"; [[ "$build" == B ]] && bench="$bench_b"
    rss_file="$(mktemp)"
    # GNU time writes the peak RSS (KiB) to its own file, so the JSON on stdout stays clean.
    json="$(/usr/bin/time -f '%M' -o "$rss_file" "$bench" "$@")"
    rss_gib="$(awk '{printf "%.2f", $1 / 1048576}' "$rss_file")"
    rm -f "$rss_file"
    while IFS= read -r line; do
      line="{\"build\": \"$build\", \"round\": $round, \"peak_rss_gib\": $rss_gib, ${line#\{}"
      echo "$line"
      lines+=("$line")
    done <<<"$json"
  done
done
printf '%s\n' "${lines[@]}" | python3 -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
for key in ("load_s", "median_ms", "peak_rss_gib"):
    a = statistics.median(r[key] for r in runs if r["build"] == "A")
    b = statistics.median(r[key] for r in runs if r["build"] == "B")
    print(f"{key}: A {a:.4g}  B {b:.4g}  A/B {a / b:.2f}")
'
