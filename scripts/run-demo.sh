#!/usr/bin/env bash
# Builds tlcm-serve and runs tlcm-server on the built-in demo models: the README's run command.
#   scripts/run-demo.sh [extra tlcm-server flags]
# Environment: BUILD_DIR (default build), SKIP_DEPS=1 to skip the package installation.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ "${SKIP_DEPS:-0}" != 1 ]; then scripts/install-deps.sh; fi
torch_dir="$(scripts/install-torch.sh)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLCM_TORCH_WHEEL="$torch_dir"
cmake --build "$BUILD_DIR" -j "$(nproc)" --target tlcm-server tlcm-client tlcm-generate
exec "$BUILD_DIR/server/tlcm-server" "$@"
