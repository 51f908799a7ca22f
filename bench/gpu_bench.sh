#!/usr/bin/env bash
# The full-size GPU benchmark: SDXL at 1024x1024 fp16 and FLUX.1-dev at 1024x1024 bf16, 2, 4 and 8
# steps, tlcm-serve (bench/pipeline_bench) and diffusers 0.31.0 (tools/bench_diffusers.py) one after
# the other on the same GPU, plus the core test suite on that GPU (the end-to-end golden runs and
# the half-precision tests run on CUDA there). Made for a CUDA machine that has PyTorch, CMake,
# ninja and nvcc but no network and no Debian development packages, inside a short time budget.
#
# 1. On a networked Debian 12 machine, in the repository root (the folders are git-ignored):
#      bench/gpu_bench.sh --prepare        (PYTHON: a python with diffusers 0.31.0 / transformers 4.39.3)
#    .gpu/debs      the build dependencies as .deb files (Abseil, nlohmann-json, GoogleTest, libpng,
#                   libjpeg, libwebp, zlib, libdeflate, pkgconf), unpacked on the GPU machine with dpkg -x
#    .gpu/skeleton  tools/make_full_size_models.py skeleton: configs, tokenizers, weight shapes
#    .whl           the diffusers side's wheels for Python 3.12 (diffusers, transformers, peft,
#                   tokenizers, huggingface_hub at the versions of our venv)
#    .gpu/debs-server  gRPC, protobuf, prometheus-cpp and their libraries (18 MB), for --serving
# 2. On the GPU machine, in a copy of the repository with those folders:
#      bench/gpu_bench.sh [--budget SECONDS] [--tests-only | --serving]       (default 480)
#    Unpacks the packages under /tmp/tlcm-deps, builds pipeline_bench, load_bench,
#    step_batching_bench and tlcm_core_tests against the machine's LibTorch while the
#    random-weight models are written to /tmp/tlcm-models, then runs the stages below; a stage
#    that the remaining budget cannot cover is skipped and says so.
#    Output in $OUT (or ./gpu-bench-out): results.jsonl (one JSON line per model and step count) and
#    one log per stage.
#    --serving (carry .gpu/debs, .gpu/debs-server and .gpu/skeleton; no .whl): tlcm-server's
#    engine and gRPC service on the GPU instead, built from the carried packages with
#    bench/serving_bench, full-size SDXL only, 1024x1024, 4 steps: for each concurrency 1, 16,
#    4 and 64 (PNG; JPEG at 16) the same closed load in-process, through gRPC with
#    max_batch_size 8 and through gRPC with max_batch_size 1. results.jsonl then holds one line
#    per run with the card's name in `gpu` (impl tlcm-engine / tlcm-server). The diffusers
#    baseline is the default mode's diffusers_sdxl line (one process, one image at a time).
set -uo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
debs=(libabsl-dev libabsl20220623 nlohmann-json3-dev libgtest-dev libgmock-dev libpng-dev libpng16-16
      zlib1g-dev zlib1g libdeflate-dev libdeflate0 libjpeg62-turbo-dev libjpeg62-turbo libwebp-dev
      libwebp7 libwebpmux3 libwebpdemux2 pkgconf pkgconf-bin libpkgconf3)
server_debs=(libgrpc++-dev libgrpc-dev libgrpc29 libgrpc++1.51 libprotobuf-dev libprotobuf32
             libprotobuf-lite32 protobuf-compiler libprotoc32 protobuf-compiler-grpc libre2-9 libre2-dev
             libc-ares2 libc-ares-dev libssl-dev libssl3 prometheus-cpp-dev libprometheus-cpp-core1.0
             libprometheus-cpp-pull1.0 libprometheus-cpp-push1.0 libcivetweb1 libcivetweb-dev libcurl4
             libcurl4-openssl-dev)
wheels=(diffusers==0.31.0 transformers==4.39.3 peft==0.13.2 tokenizers==0.15.2 huggingface_hub==0.36.2)

if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  mkdir -p .gpu/debs .gpu/debs-server .whl
  (cd .gpu/debs && apt-get download "${debs[@]}")
  (cd .gpu/debs-server && apt-get download "${server_debs[@]}")
  "${PYTHON:-python3}" tools/make_full_size_models.py skeleton --out .gpu/skeleton
  "${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
  du -sh .gpu .whl
  exit 0
fi

budget=480 tests_only=0 serving=0
while (($#)); do
  case "$1" in
    --budget) budget="$2"; shift 2 ;;
    --tests-only) tests_only=1; shift ;;  # build and run the core suite only
    --serving) serving=1; shift ;;        # the engine and gRPC server (see the header)
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# For a trial run elsewhere: GPU_BENCH_DEVICE (cuda), GPU_BENCH_SKELETON (.gpu/skeleton),
# GPU_BENCH_SIZE (1024), GPU_BENCH_BUILD_S (300: the limit of each build step; 16 cores need ~2 min).
device="${GPU_BENCH_DEVICE:-cuda}" skeleton="${GPU_BENCH_SKELETON:-.gpu/skeleton}"
size="${GPU_BENCH_SIZE:-1024}" build_s="${GPU_BENCH_BUILD_S:-300}"
out="${OUT:-$repo/gpu-bench-out}"
mkdir -p "$out"
deps=/tmp/tlcm-deps build=/tmp/tlcm-build
# ~41 GB of weights: on disk, not in a RAM-backed /tmp (FLUX's float32 staging needs the memory).
models=/tmp/tlcm-models
[[ "$(stat -f -c %T /tmp)" == tmpfs ]] && models="$repo/.gpu/models"
results="$out/results.jsonl"
: >"$results"
: >"$out/summary.log"
say() { echo "[gpu_bench $(date +%T) +${SECONDS}s] $*" | tee -a "$out/summary.log"; }
left() { echo $((budget - SECONDS)); }
# stage NAME SECONDS CMD...: runs CMD with at most SECONDS (and the budget's rest), logs to NAME.log.
stage() {
  local name="$1" limit="$2"
  shift 2
  local rest=$(($(left) - 10))
  if ((rest < 30)); then
    say "$name: skipped, ${rest}s of the budget left"
    return 1
  fi
  ((limit > rest)) && limit=$rest
  say "$name: start (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  say "$name: rc=$rc"
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
gpu_name="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
# tag_lines [JSON]: each JSON line of stdin with the card's name as `gpu` (and JSON's fields).
tag_lines() {
  GPU="$gpu_name" EXTRA="${1:-}" python3 -c 'import json, os, sys
for line in sys.stdin:
    r = json.loads(line); r.update(json.loads(os.environ["EXTRA"] or "{}")); r["gpu"] = os.environ["GPU"]
    print(json.dumps(r))'
}
df -h /tmp "$repo" | tee -a "$out/gpu.txt"; free -g | tee -a "$out/gpu.txt"; nproc | tee -a "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/gpu.txt"
# Both sides use the machine's PyTorch (it has no registry to install another): say so when it is
# not the version every other build pins (scripts/torch-version.env).
source scripts/torch-version.env
machine_torch="$(python3 -c 'import torch; print(torch.__version__.split("+")[0])')"
if [[ "$machine_torch" != "$TORCH_VERSION" ]]; then
  echo "note: this machine has torch $machine_torch, the pin is $TORCH_VERSION; both sides use $machine_torch" |
    tee -a "$out/gpu.txt"
fi

# Dependencies: Debian packages unpacked outside / (their .pc files say prefix=/usr: sysroot).
rm -rf "$deps" && mkdir -p "$deps"
for f in .gpu/debs/*.deb; do dpkg -x "$f" "$deps"; done
if [[ "$serving" == 1 ]]; then
  for f in .gpu/debs-server/*.deb; do dpkg -x "$f" "$deps"; done
  export PATH="$deps/usr/bin:$PATH"  # protoc and grpc_cpp_plugin
fi
find "$deps" -type l -lname '/*' | while read -r l; do ln -sfn "$deps$(readlink "$l")" "$l"; done
multiarch="$deps/usr/lib/x86_64-linux-gnu"
# Abseil's libraries load each other by soname from there (also when ctest lists the tests).
export LD_LIBRARY_PATH="$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH="$multiarch/pkgconfig:$deps/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$deps"
pkg_config="$(command -v pkg-config || true)"
if [[ -z "$pkg_config" ]]; then  # the unpacked pkgconf, with its library beside it
  pkg_config="$deps/pkg-config"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$multiarch" "$deps/usr/bin/pkgconf" >"$pkg_config"
  chmod +x "$pkg_config"
fi

# The random-weight models, written while the code builds.
# (kept from an earlier run on the same machine when complete)
if [[ -f "$models/complete" || "$tests_only" == 1 ]]; then
  true &
else
  only=()
  [[ "$serving" == 1 ]] && only=(--only sdxl-1024)
  { python3 tools/make_full_size_models.py materialize "$models" --skeleton "$skeleton" --device "$device" \
      "${only[@]}" && { [[ "$serving" == 1 ]] || touch "$models/complete"; }; } >"$out/models.log" 2>&1 &
fi
models_pid=$!

export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # Hopper; only for code LibTorch compiles itself
torch_dir="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
torch_cmake="$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')"
bench_targets=(pipeline_bench load_bench step_batching_bench image_bench tlcm-generate)
[[ "$serving" == 1 ]] && bench_targets=(serving_bench)
cmake_args=(-S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTLCM_BUILD_SERVER="$serving"
  -DCMAKE_PREFIX_PATH="$torch_cmake;$deps/usr" -DPKG_CONFIG_EXECUTABLE="$pkg_config"
  -DCMAKE_CXX_FLAGS="-isystem $deps/usr/include/x86_64-linux-gnu")
# The normal path is find_package(Torch) (CUDA found through nvcc); if the wheel's CMake config
# cannot be satisfied here, or what it configures does not build, import the wheel's libraries
# directly (cmake/TorchWheel.cmake links libtorch_cuda; without the CUDA runtime headers from the
# nvidia-* pip packages it does so without the CUDA allocator's memory figures).
wheel_args=(-DTLCM_TORCH_WHEEL="$torch_dir")
if ! { stage configure 120 cmake "${cmake_args[@]}" &&
       stage build_bench "$build_s" cmake --build "$build" --target "${bench_targets[@]}"; }; then
  rm -rf "$build"
  { stage configure_wheel 120 cmake "${cmake_args[@]}" "${wheel_args[@]}" &&
    stage build_bench_wheel "$build_s" cmake --build "$build" --target "${bench_targets[@]}"; } ||
    { say "configure or build failed"; exit 1; }
fi
grep -hE 'LibTorch|TLCM_WITH_CUDA' "$out"/configure*.log | tee -a "$out/summary.log"
if [[ "$serving" == 1 ]]; then
  true &  # the serving run skips the core suite
else
  stage build_tests "$build_s" cmake --build "$build" --target tlcm_core_tests &
fi
tests_pid=$!
wait "$models_pid" || { say "model generation failed"; cat "$out/models.log"; exit 1; }
say "models written: $(du -sh "$models" | cut -f1)"
wait "$tests_pid"

run_core_tests() {  # every test in its own process (ctest), so that a crash names its test
  stage core_tests 150 ctest --test-dir "$build" -L core -j "$(nproc)" --output-on-failure --timeout 120
  grep -E 'tests passed|tests failed|Failed|SEGFAULT|Exception|Timeout' "$out/core_tests.log" |
    tail -20 | tee -a "$out/summary.log"
}
if [[ "$tests_only" == 1 ]]; then
  run_core_tests
  say "done"
  exit 0
fi

if [[ "$serving" == 1 ]]; then
  # One serving_bench process loads the model three times (in-process engine, gRPC server with
  # batches of up to 8, gRPC server with batches of 1) and runs every load against each; its run
  # lines go to results.jsonl with the card's name and the model family.
  serve() {  # serve NAME LIMIT FORMATS CONCURRENCIES
    stage "$1" "$2" "$build/bench/serving_bench" --pipeline real --device cuda:0 \
      --model_path "$models/sdxl-1024" --lora_path "" --size "$size" --steps_mix 4 \
      --max_batch_size 8 --format "$3" --concurrency "$4" --requests 0 --rounds 1
    grep -h '^{"run"' "$out/$1.log" | tag_lines '{"family": "sdxl"}' >>"$results"
    grep -h '^{"serving_overhead' "$out/$1.log" | tee -a "$out/summary.log"
  }
  serve serving_png 300 png 1,16,4,64
  serve serving_jpeg 100 jpeg 16
  cat "$results"
  say "done"
  exit 0
fi

prompt="a lighthouse on a rocky coast at dawn, oil painting"
common=(--prompt "$prompt" --resolution "$size" --seed 1 --device "$device" --repeats 3 --warmup 1)
sdxl=(--base_model_path "$models/sdxl-1024" --dtype fp16)
flux=(--base_model_path "$models/flux-1024" --dtype bf16)
bench() {  # bench NAME LIMIT PROGRAM... : its JSON lines (complete or not) go to results.jsonl
  stage "$@"
  grep -h '^{' "$out/$1.log" | tag_lines >>"$results"
}
# Most telling first: a stage that the rest of the budget cannot cover is skipped. Each lever is
# an A/B against the default line of the same model on the same GPU (issue figures per stage).
bench tlcm_sdxl 150 "$build/bench/pipeline_bench" "${common[@]}" "${sdxl[@]}" --steps_list 2,4,8
bench tlcm_sdxl_graphs 150 "$build/bench/pipeline_bench" "${common[@]}" "${sdxl[@]}" \
  --steps_list 2,4,8 --cuda_graphs true
bench tlcm_sdxl_vae_fp32 60 "$build/bench/pipeline_bench" "${common[@]}" "${sdxl[@]}" \
  --steps_list 4 --vae_dtype fp32
for batch in 4 8; do
  bench "tlcm_sdxl_b$batch" 90 "$build/bench/pipeline_bench" "${common[@]}" "${sdxl[@]}" \
    --steps_list 4 --batch_size "$batch" --cuda_graphs true
done
# The GPU tests: golden runs on cuda:0, the half-precision targets and CUDA graph replays
# (bit for bit against eager runs) on CUDA.
stage core_tests_cuda 90 "$build/tests/tlcm_core_tests" --gtest_filter='*cuda*' --gtest_brief=1
grep -E 'tests? from|PASSED|FAILED' "$out/core_tests_cuda.log" | tee -a "$out/summary.log"
bench tlcm_flux 200 "$build/bench/pipeline_bench" "${common[@]}" "${flux[@]}" --steps_list 2,4,8
bench tlcm_flux_graphs 200 "$build/bench/pipeline_bench" "${common[@]}" "${flux[@]}" \
  --steps_list 2,4,8 --cuda_graphs true
# Image encoding of a 1024x1024 picture per format, on this machine's CPU (the server encodes
# off the GPU worker's thread).
bench image_encode 40 "$build/bench/image_bench" --size "$size" --repeats 5

# The diffusers side, from the carried wheels (GPU_BENCH_DIFFUSERS=0 skips it): eager, then
# torch.compile in the modes users pick (compilation happens in the warm-up runs).
if [[ "${GPU_BENCH_DIFFUSERS:-1}" == 0 ]]; then
  say "diffusers: skipped (GPU_BENCH_DIFFUSERS=0)"
elif python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  >"$out/pip.log" 2>&1; then
  export PYTHONPATH=/tmp/site
  bench diffusers_sdxl 150 python3 tools/bench_diffusers.py "${common[@]}" "${sdxl[@]}" --steps_list 2,4,8
  bench diffusers_sdxl_compile 300 python3 tools/bench_diffusers.py "${common[@]}" "${sdxl[@]}" \
    --steps_list 2,4,8 --warmup 2 --compile max-autotune-no-cudagraphs
  bench diffusers_sdxl_compile_ro 240 python3 tools/bench_diffusers.py "${common[@]}" "${sdxl[@]}" \
    --steps_list 2,4,8 --warmup 3 --compile reduce-overhead
  bench diffusers_flux 220 python3 tools/bench_diffusers.py "${common[@]}" "${flux[@]}" --steps_list 2,4,8
  bench diffusers_flux_compile 300 python3 tools/bench_diffusers.py "${common[@]}" "${flux[@]}" \
    --steps_list 2,4,8 --warmup 2 --compile max-autotune-no-cudagraphs
  # Our images against diffusers' on this GPU: fp16 (our bf16 VAE and an fp32 one), bf16, fp32.
  stage parity_sdxl 150 python3 tools/dtype_parity.py --generate "$build/src/cli/tlcm-generate" \
    --models "$models" --configs sdxl-1024 --suite gpu --device "$device" --size "$size" --threads 8
  grep -h '^{' "$out/parity_sdxl.log" | tag_lines >>"$results"
  unset PYTHONPATH
else
  say "diffusers wheels did not install (pip.log)"
fi
# Request- against step-level batching under a Poisson 2/4/8-step load at 80% of capacity
# (docs/server.md, Batching), full-size SDXL without LoRA.
bench step_batching 200 "$build/bench/step_batching_bench" --device "$device" \
  --base_model_path "$models/sdxl-1024" --lora_path "" --dtype fp16 --width "$size" \
  --height "$size" --requests 48 --max_batch_size 8
# Host memory and time of loading the UNet: float32-then-cast versus straight to the GPU.
bench load_unet 120 "$build/bench/load_bench" --unet "$models/sdxl-1024/unet" --device "$device" \
  --dtype fp16 --repeats 2

run_core_tests
cat "$results"
say "done"
