#!/usr/bin/env bash
# Runs a Python end-to-end test with the pinned environment of `scripts/install-tools.sh python`
# (ctest's entry point for tests/python). A missing environment fails the test.
# Usage: tests/python/run_test.sh BUILD_DIR TEST.py [ARGS...]   (BUILD_DIR: TLCM_BUILD_DIR)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="$("${repo}/scripts/install-tools.sh" --path python)"
export TLCM_BUILD_DIR="$1"
shift
# No writes of .pyc files into the source tree.
PYTHONDONTWRITEBYTECODE=1 exec "${python}" "$@"
