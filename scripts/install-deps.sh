#!/usr/bin/env bash
# Installs the build and test dependencies of tlcm-serve from Debian/Ubuntu packages. LibTorch is
# not one of them: scripts/install-torch.sh fetches the pinned PyTorch wheel's.
# Usage: scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake ninja-build ccache pkg-config git
  python3 python3-pip  # scripts/install-torch.sh fetches the pinned LibTorch with `pip download`
  python3-venv  # scripts/install-tools.sh python: the Python end-to-end tests' environment
  chromium chromium-driver  # tests/python/playground_test.py: the playground in headless chromium
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev
  libcpp-httplib-dev  # the HTTP front door (server/http; docs/http.md says why this library)
  libpng-dev libjpeg-dev libwebp-dev
  libdeflate-dev  # SIMD CRC-32 / Adler-32 for our PNG writer (src/image/png_writer.cc)
  openssl  # the TLS tests make their certificates with the openssl CLI
  clang-format-14 clang-tidy-14  # scripts/check_format.sh (ctest format_check), run_clang_tidy.sh
  clang-14 libclang-rt-14-dev  # scripts/sanitize.sh: sanitizer builds and libFuzzer
)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
