#!/usr/bin/env bash
# The sanitizer stage: sanitizer builds of the one CMake build (cmake/Sanitizers.cmake) with
# clang, only the targets each check needs, in build folders of their own (ccache shared).
#   asan  TLCM_SANITIZE=address,undefined + TLCM_BUILD_FUZZERS: the torch-free suites (text,
#         image, engine, server) and every fuzz target's corpus (its regression inputs)
#   tsan  TLCM_SANITIZE=thread over an Abseil built from Debian's source (so that TSan sees
#         absl::Mutex): the engine suite. Debian's gRPC links Debian's Abseil, so the server
#         suite cannot join it (see docs/development.md, "Fuzzing and sanitizers").
#   fuzz  each fuzz target for FUZZ_SECONDS / (number of targets) seconds from its corpus (needs
#         the asan build); new inputs go to <asan build>/fuzz-corpus/, crashes to
#         <asan build>/fuzz-artifacts/ and fail the stage
#   core  tlcm_core_tests (LibTorch) under ASan + UBSan, built with g++ (clang 14 cannot capture
#         structured bindings in lambdas, which the core does); not in the default stages: it
#         compiles the whole inference core again
# Usage: scripts/sanitize.sh [STAGE...]   (default: asan tsan fuzz)
# Environment: ASAN_BUILD_DIR (default build-asan), TSAN_BUILD_DIR (default build-tsan),
# CORE_BUILD_DIR (default build-asan-core),
# FUZZ_SECONDS (default 60, all targets together), JOBS (default: cores). Needs clang-14 and
# libclang-rt-14-dev (scripts/install-deps.sh) and the pinned LibTorch (configure only, except
# for core).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
TSAN_BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
CORE_BUILD_DIR=${CORE_BUILD_DIR:-build-asan-core}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-$(nproc)}
stages=("$@")
if [ ${#stages[@]} -eq 0 ]; then stages=(asan tsan fuzz); fi

torch_dir="$(scripts/install-torch.sh)"
fuzzers=(safetensors_header_fuzz tokenizer_config_fuzz clip_tokenizer_fuzz t5_tokenizer_fuzz
         sentencepiece_model_fuzz image_decode_fuzz server_config_fuzz generate_request_fuzz)
# Fail at the first report; LeakSanitizer stays on (ASan's default).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# configure <build dir> <C++ compiler> <cmake options...>
configure() {
  local dir="$1" compiler="$2"
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$compiler" \
    -DTLCM_TORCH_WHEEL="$torch_dir" -DTLCM_BUILD_BENCH=OFF "$@" > "$dir.configure.log" ||
    { cat "$dir.configure.log"; exit 1; }
}

# Section timer: `timed NAME command...` prints how long the command took.
timed() {
  local name="$1" start=$SECONDS
  shift
  "$@"
  echo "== $name: $((SECONDS - start)) s"
}

asan_stage() {
  configure "$ASAN_BUILD_DIR" clang++-14 -DTLCM_SANITIZE=address,undefined -DTLCM_BUILD_FUZZERS=ON
  local suites=(tlcm_text_tests tlcm_image_tests tlcm_engine_tests tlcm_scheduler_tests
                tlcm_server_tests)
  timed "asan build" cmake --build "$ASAN_BUILD_DIR" -j "$JOBS" --target "${suites[@]}" "${fuzzers[@]}"
  local dirs=(tests/text tests/image tests/engine tests/engine tests/server) i
  for i in "${!suites[@]}"; do
    timed "asan ${suites[$i]}" "$ASAN_BUILD_DIR/${dirs[$i]}/${suites[$i]}" --gtest_brief=1
  done
  timed "asan fuzz regressions" ctest --test-dir "$ASAN_BUILD_DIR" -L fuzz --output-on-failure
}

# Debian's Abseil source (the installed version), fetched once into .cache/abseil-src with a
# private deb-src list (the system's apt configuration is left alone).
abseil_source() {
  local work="$repo/.cache/abseil-src"
  if [ ! -f "$work/abseil/CMakeLists.txt" ]; then
    rm -rf "$work"
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
    echo "deb-src http://deb.debian.org/debian bookworm main" > "$work/apt/src.list"
    local apt=(-o Dir::Etc::SourceList="$work/apt/src.list" -o Dir::Etc::SourceParts=/dev/null
               -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache")
    apt-get "${apt[@]}" update -qq >&2
    (cd "$work/src" && apt-get "${apt[@]}" source --download-only abseil > /dev/null)
    tar -C "$work/src" -xzf "$work"/src/abseil_*.orig.tar.gz
    mv "$work"/src/abseil-2* "$work/abseil"
    # The installed Abseil's options (inline namespace, absl:: types instead of std::).
    cp /usr/include/absl/base/options.h "$work/abseil/absl/base/options.h"
  fi
  echo "$work/abseil"
}

tsan_stage() {
  local absl
  absl="$(abseil_source)"
  configure "$TSAN_BUILD_DIR" clang++-14 -DTLCM_SANITIZE=thread -DTLCM_ABSL_SOURCE_DIR="$absl" \
    -DTLCM_BUILD_SERVER=OFF
  timed "tsan build" cmake --build "$TSAN_BUILD_DIR" -j "$JOBS" --target tlcm_engine_tests
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1} \
    timed "tsan tlcm_engine_tests" "$TSAN_BUILD_DIR/tests/engine/tlcm_engine_tests" --gtest_brief=1
}

fuzz_stage() {
  local seconds=$((FUZZ_SECONDS / ${#fuzzers[@]})) name
  if [ "$seconds" -lt 1 ]; then seconds=1; fi
  mkdir -p "$ASAN_BUILD_DIR/fuzz-artifacts"
  for name in "${fuzzers[@]}"; do
    mkdir -p "$ASAN_BUILD_DIR/fuzz-corpus/$name"
    "$ASAN_BUILD_DIR/tests/fuzz/$name" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$ASAN_BUILD_DIR/fuzz-artifacts/$name-" \
      "$ASAN_BUILD_DIR/fuzz-corpus/$name" "tests/fuzz/corpus/$name" > "$ASAN_BUILD_DIR/$name.log" 2>&1 ||
      { tail -n 60 "$ASAN_BUILD_DIR/$name.log"; echo "$name failed: see $ASAN_BUILD_DIR/fuzz-artifacts/"; exit 1; }
    echo "== fuzz $name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$ASAN_BUILD_DIR/$name.log" | tail -n 1)"
  done
}

core_stage() {
  configure "$CORE_BUILD_DIR" g++ -DTLCM_SANITIZE=address,undefined -DTLCM_BUILD_SERVER=OFF
  timed "core build" cmake --build "$CORE_BUILD_DIR" -j "$JOBS" --target tlcm_core_tests
  timed "core tlcm_core_tests" "$CORE_BUILD_DIR/tests/tlcm_core_tests" --gtest_brief=1
}

for stage in "${stages[@]}"; do
  case "$stage" in
    asan) timed "stage asan" asan_stage ;;
    tsan) timed "stage tsan" tsan_stage ;;
    fuzz) timed "stage fuzz" fuzz_stage ;;
    core) timed "stage core" core_stage ;;
    *) echo "unknown stage '$stage' (asan, tsan, fuzz, core)" >&2; exit 2 ;;
  esac
done
