#!/usr/bin/env bash
# Runs the C++ pipeline (pipeline_bench) and then diffusers (tools/bench_diffusers.py) on the same
# model, LoRA, prompt, steps, size, batch, seed and thread count, one after the other on this
# machine, prints both JSON lines and the time ratio diffusers / tlcm-serve per stage and in total
# (> 1: tlcm-serve is faster). For one model and one setting; bench/cpu_compare.sh runs the whole
# CPU matrix (models, threads, precisions, rounds) and reports tlcm-serve / diffusers instead.
#
# Usage: bench/compare_diffusers.sh FLAGS...
#   FLAGS are passed unchanged to both programs: --base_model_path --lora_path --prompt
#   --infer-steps --resolution|--width/--height --batch_size --seed --threads
#   --max_sequence_length --guidance_scale --repeats --warmup --device --dtype --steps_list
#   (--steps_list 2,4,8: every step count on one loaded model, one ratio line each).
# Environment: PIPELINE_BENCH (default build/bench/pipeline_bench), PYTHON (default python3; needs
# torch, diffusers 0.31.0, transformers 4.39.3, peft 0.13.2).
# Example (the medium models of tools/make_bench_models.py):
#   bench/compare_diffusers.sh --base_model_path /work/bench-models/flux-medium/model \
#     --lora_path /work/bench-models/flux-medium/lora --prompt "a red fox in snow" \
#     --infer-steps 4 --resolution 512 --threads 2 --seed 1 --repeats 3
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bench="${PIPELINE_BENCH:-$here/../build/bench/pipeline_bench}"
python="${PYTHON:-python3}"
if [[ ! -x "$bench" ]]; then
  echo "no pipeline_bench at $bench (build the pipeline_bench target or set PIPELINE_BENCH)" >&2
  exit 2
fi

cpp="$("$bench" "$@")"
echo "$cpp"
py="$("$python" "$here/../tools/bench_diffusers.py" "$@")"
echo "$py"

"$python" - "$cpp" "$py" <<'EOF'
import json
import sys

cpp_runs = [json.loads(line) for line in sys.argv[1].splitlines()]
py_runs = [json.loads(line) for line in sys.argv[2].splitlines()]
if len(cpp_runs) != len(py_runs):
    sys.exit(f"tlcm-serve printed {len(cpp_runs)} runs, diffusers {len(py_runs)}")
for cpp, py in zip(cpp_runs, py_runs):
    for key in ("family", "steps", "width", "height", "batch", "threads"):
        if cpp[key] != py[key]:
            sys.exit(f"the two runs differ in {key}: {cpp[key]} vs {py[key]}")
    parts = []
    for key in ("median_ms", "cpu_ms", "encode_ms", "encode_t5_ms", "denoise_ms", "decode_ms"):
        if cpp[key] > 0:
            parts.append(f"{key[:-3]} {py[key] / cpp[key]:.2f}")
    print(f"{cpp['steps']} steps, ratio diffusers/tlcm-serve:", ", ".join(parts))
    if cpp["family"] == "flux":
        print(f"  T5 share of the run: tlcm-serve {cpp['encode_t5_ms'] / cpp['median_ms']:.1%}, "
              f"diffusers {py['encode_t5_ms'] / py['median_ms']:.1%}")
EOF
