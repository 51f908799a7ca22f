#!/usr/bin/env bash
# Runs clang-tidy (Debian's clang-tidy-14, checks in .clang-tidy) over first-party sources with a
# configured build's compile_commands.json; fails on any finding. A developer check, not part of
# CI: a translation unit that includes <torch/torch.h> takes about 40 s on the 2-core VM, the
# torch-free ones about 6 s of CPU each: the whole tree is over half an hour on two cores.
#   scripts/run_clang_tidy.sh [-b BUILD_DIR] [-j JOBS] [FILE|FOLDER...]
# Without FILE or FOLDER: every .cc of src/, server/, client/, tests/ and bench/.
# --changed instead: the .cc files that differ from origin/main (or from HEAD if there is none).
# Default BUILD_DIR: build (configure it first: scripts/test.sh or cmake, see docs/development.md).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build"
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    -b) build="$(realpath "$2")"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    *) break ;;
  esac
done
cd "$repo"
if [ ! -f "$build/compile_commands.json" ]; then
  echo "$build/compile_commands.json missing: configure that build first (-b BUILD_DIR)" >&2
  exit 1
fi
if [ "${1:-}" = --changed ]; then
  base=$(git rev-parse --verify -q origin/main || git rev-parse HEAD)
  mapfile -t files < <(git diff --name-only --diff-filter=d "$base" -- '*.cc')
elif [ $# -gt 0 ]; then
  mapfile -t files < <(git ls-files -- "$@" | grep '\.cc$')
else
  mapfile -t files < <(git ls-files -- src server client tests bench | grep '\.cc$')
fi
# Only .cc files the build compiles (the fuzz targets only exist in fuzzing builds).
mapfile -t files < <(for file in "${files[@]}"; do
  grep -q "\"file\": \"$repo/$file\"" "$build/compile_commands.json" && echo "$repo/$file"
done)
if [ "${#files[@]}" = 0 ]; then echo "no files to check"; exit 0; fi
echo "clang-tidy over ${#files[@]} files, $jobs at a time"
# GCC's precompiled headers mean nothing to clang: -include of the PCH source is kept, its .gch
# is ignored.
run-clang-tidy-14 -quiet -p "$build" -j "$jobs" \
  -header-filter="^$repo/(src|server|client|tests|bench)/" \
  -extra-arg=-Wno-invalid-pch "${files[@]}"
