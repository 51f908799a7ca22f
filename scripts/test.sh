#!/usr/bin/env bash
# Builds tlcm-serve and runs the whole test suite: the README's test command.
#   scripts/test.sh            install Debian packages and the pinned test tools (helm, ghz,
#                              promtool, a Python venv: scripts/install-tools.sh), configure,
#                              build, run ctest,
#                              then the sanitizer stage (scripts/sanitize.sh: the torch-free
#                              suites and the fuzz targets' regression inputs under ASan + UBSan,
#                              the engine suite under TSan, 60 s of fuzzing)
# Environment: BUILD_DIR (default build), SKIP_DEPS=1 to skip the Debian package installation
# (the tools, in .cache/tools/, are installed once whatever it says), JOBS (default: cores),
# SANITIZE=0 to skip the sanitizer stage.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
if [ "${SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
scripts/install-tools.sh
torch_dir="$(scripts/install-torch.sh)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLCM_TORCH_WHEEL="$torch_dir" \
  -DTLCM_WARNINGS_AS_ERRORS=ON
cmake --build "$BUILD_DIR" -j "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 -j "$JOBS"
if [ "${SANITIZE:-1}" != 0 ]; then JOBS="$JOBS" scripts/sanitize.sh; fi
