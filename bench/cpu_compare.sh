#!/usr/bin/env bash
# The CPU comparison with diffusers in one command: pipeline_bench (tlcm-serve) and
# tools/bench_diffusers.py (diffusers 0.31.0 on the same torch version) on the medium SDXL and
# FLUX models at 256x256 and 4 steps, at 1 thread and at the machine's default thread count,
# back to back, for --rounds rounds (the order of the two sides alternates from round to round, so
# a slow drift of the machine's load hurts both alike). Appends every JSON line, tagged with the
# round, to --out and prints, per model and thread count, the median of the per-round time ratios
# tlcm-serve / diffusers (< 1: tlcm-serve is faster; the target is <= 0.7) and the median times.
#
# Precision variants (VARIANTS): fp32 (both sides float32 throughout), bf16 (both sides bfloat16
# throughout) and fp32-vae-bf16 (tlcm-serve float32 with --vae_dtype bf16 against diffusers in
# float32: the image difference that costs is in docs/performance.md, Parity).
#
# Usage: bench/cpu_compare.sh [--rounds 3] [--models /work/bench-models] [--steps 4]
#                             [--size 256] [--repeats 3] [--out bench/results/cpu-DATE.jsonl]
#   --models: the output folder of tools/make_bench_models.py (sdxl-medium/, flux-medium/).
# Environment: PIPELINE_BENCH (default build/bench/pipeline_bench), PYTHON (default python3;
# needs torch at scripts/torch-version.env's version, diffusers 0.31.0, transformers 4.39.3,
# peft 0.13.2), CONFIGS (default "sdxl-medium flux-medium"), THREADS (default "1 0"; 0 = the
# default, one per core), VARIANTS (default "fp32 bf16 fp32-vae-bf16").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bench="${PIPELINE_BENCH:-$here/../build/bench/pipeline_bench}"
python="${PYTHON:-python3}"
rounds=3 models=/work/bench-models steps=4 size=256 repeats=3
out="$here/results/cpu-$(date +%F).jsonl"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2" ;;
    --models) models="$2" ;;
    --steps) steps="$2" ;;
    --size) size="$2" ;;
    --repeats) repeats="$2" ;;
    --out) out="$2" ;;
    *) echo "unknown flag $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
if [[ ! -x "$bench" ]]; then
  echo "no pipeline_bench at $bench (build the pipeline_bench target or set PIPELINE_BENCH)" >&2
  exit 2
fi
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
torch_version="$("$python" -c 'import torch; print(torch.__version__)')"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

for round in $(seq 1 "$rounds"); do
  for config in ${CONFIGS:-sdxl-medium flux-medium}; do
    for threads in ${THREADS:-1 0}; do
     for variant in ${VARIANTS:-fp32 bf16 fp32-vae-bf16}; do
      flags=(--base_model_path "$models/$config/model" --lora_path "$models/$config/lora"
             --prompt "a red fox in the snow" --infer-steps "$steps" --resolution "$size"
             --threads "$threads" --seed 1 --repeats "$repeats" --warmup 1)
      case "$variant" in
        fp32) ours=(--dtype fp32) theirs=(--dtype fp32) ;;
        bf16) ours=(--dtype bf16) theirs=(--dtype bf16) ;;
        fp32-vae-bf16) ours=(--dtype fp32 --vae_dtype bf16) theirs=(--dtype fp32) ;;
        *) echo "unknown variant $variant" >&2; exit 2 ;;
      esac
      run_cpp() { "$bench" "${flags[@]}" "${ours[@]}"; }
      run_py() { "$python" "$here/../tools/bench_diffusers.py" "${flags[@]}" "${theirs[@]}"; }
      if (( round % 2 )); then a="$(run_cpp)"; b="$(run_py)"; else b="$(run_py)"; a="$(run_cpp)"; fi
      for line in "$a" "$b"; do
        "$python" - "$line" "$round" "$config" "$variant" "$cpu" "$torch_version" >> "$tmp" <<'PY'
import json, sys
line, round_, config, variant, cpu, torch_version = sys.argv[1:]
record = json.loads(line)
record.update(round=int(round_), config=config, variant=variant, cpu=cpu, torch=torch_version)
print(json.dumps(record))
PY
      done
      echo "round $round $config threads=$threads $variant:" \
           "tlcm-serve $(echo "$a" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])') ms," \
           "diffusers $(echo "$b" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])') ms" >&2
     done
    done
  done
done
mkdir -p "$(dirname "$out")"
cat "$tmp" >> "$out"

"$python" - "$tmp" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(dict)  # (config, variant, threads, round) -> impl -> record
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["config"], r["variant"], r["threads"], r["round"])][r["impl"]] = r
table = defaultdict(lambda: defaultdict(list))
for (config, variant, threads, _), pair in runs.items():
    ours, theirs = pair["tlcm-serve"], pair["diffusers"]
    row = table[(config, variant, threads)]
    row["ours"].append(ours["median_ms"])
    row["theirs"].append(theirs["median_ms"])
    row["ratio"].append(ours["median_ms"] / theirs["median_ms"])
    for stage in ("encode_ms", "denoise_ms", "decode_ms"):
        if theirs[stage] > 0:
            row[stage].append(ours[stage] / theirs[stage])
print("| config | precision | threads | tlcm-serve ms | diffusers ms | time ratio (rounds) | median | encode / denoise / decode |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (config, variant, threads), row in sorted(table.items()):
    stages = " / ".join(f"{statistics.median(row[s]):.2f}" for s in ("encode_ms", "denoise_ms", "decode_ms"))
    print(f"| {config} | {variant} | {threads} | {statistics.median(row['ours']):.0f} | {statistics.median(row['theirs']):.0f} | "
          f"{', '.join(f'{x:.2f}' for x in row['ratio'])} | **{statistics.median(row['ratio']):.2f}** | {stages} |")
PY
echo "raw lines appended to $out" >&2
