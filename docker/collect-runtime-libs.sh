#!/usr/bin/env bash
# Copies the shared libraries that the given executables need, and that a bare runtime base image
# does not provide, into one flat folder (the runtime stage puts it on LD_LIBRARY_PATH).
#
# Usage: collect-runtime-libs.sh DEST_DIR EXECUTABLE... [-- EXTRA_LIB_DIR...]
#   EXTRA_LIB_DIR: folders copied whole (every *.so*), for libraries that are opened with dlopen
#   and so never appear in ldd's output (LibTorch's CUDA kernels, cuDNN / cuBLAS sub-libraries).
#
# Left out on purpose: the C runtime (it comes with the base image and must match its loader)
# and the NVIDIA driver libraries (libcuda, libnvidia-*), which the NVIDIA container runtime
# mounts from the host.
set -euo pipefail
dest="$1"; shift
mkdir -p "$dest"
executables=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do executables+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the "--"

skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|libcuda\.so|libnvidia-)'
for exe in "${executables[@]}"; do
  # "libfoo.so.1 => /path/libfoo.so.1 (0x...)": keep the name the loader asks for.
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
    if [[ "$soname" =~ $skip ]]; then continue; fi
    cp -L --no-clobber "$path" "$dest/$soname"
  done
  if ldd "$exe" | grep -q "not found"; then
    echo "collect-runtime-libs: unresolved libraries of $exe:" >&2
    ldd "$exe" | grep "not found" >&2
    exit 1
  fi
done
for dir in "$@"; do
  find "$dir" -maxdepth 1 -name '*.so*' \( -type f -o -type l \) -exec cp -L --no-clobber {} "$dest/" \;
done
echo "collect-runtime-libs: $(ls "$dest" | wc -l) libraries, $(du -sh "$dest" | cut -f1) in $dest"
