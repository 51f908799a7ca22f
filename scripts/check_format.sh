#!/usr/bin/env bash
# Checks that every first-party C++ file is formatted as .clang-format says (clang-format 14,
# Debian's clang-format-14; scripts/install-deps.sh installs it). CI runs it as the ctest test
# format_check. Takes a few seconds.
#   scripts/check_format.sh          lists the files clang-format would change; fails if any
#   scripts/check_format.sh --fix    rewrites them in place
# Environment: CLANG_FORMAT (default clang-format-14, else clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
case "${1:-}" in
  "") ;;
  --fix) fix=1 ;;
  *) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac
clang_format=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$clang_format" ]; then
  echo "clang-format-14 not found: apt-get install clang-format-14 (scripts/install-deps.sh)" >&2
  exit 1
fi
# Every tracked C++ file, less the generated ones: src/text/unicode_tables.cc comes from
# tools/gen_unicode_tables.py as it writes it.
mapfile -t files < <(git ls-files -- '*.cc' '*.h' ':!:src/text/unicode_tables.cc')
if [ "$fix" = 1 ]; then
  "$clang_format" -i "${files[@]}"
  exit 0
fi
unformatted=()
for file in "${files[@]}"; do
  if ! "$clang_format" --dry-run -Werror "$file" > /dev/null 2>&1; then unformatted+=("$file"); fi
done
if [ "${#unformatted[@]}" -gt 0 ]; then
  printf '%s\n' "${unformatted[@]}"
  echo "${#unformatted[@]} file(s) not formatted: scripts/check_format.sh --fix rewrites them" >&2
  exit 1
fi
echo "${#files[@]} files formatted as .clang-format says"
