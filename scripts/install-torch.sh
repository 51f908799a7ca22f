#!/usr/bin/env bash
# Installs the CPU part of the pinned PyTorch wheel's LibTorch (scripts/torch-version.env) into a
# cache outside the tree and prints the torch package folder to pass as -DTLCM_TORCH_WHEEL.
#   scripts/install-torch.sh          -> e.g. ~/.cache/tlcm-serve/libtorch-2.15.0-x86_64/torch
# PyPI's Linux x86_64 wheel is the CUDA build; only what a CPU build links is unpacked:
# torch/include, libtorch_cpu, libc10 and the libraries bundled with them (libgomp, libgfortran,
# libshm, ...), plus libcudart.so.13 and libcupti.so.13 from the nvidia-cuda-runtime / -cupti
# wheels (2.3 + 12 MB), which libtorch_cpu loads even without a GPU. The layout mirrors
# site-packages (torch/ beside nvidia/cu13/) so the wheel's own RPATHs find them; the script
# fails unless every library libtorch_cpu needs resolves. No CUDA libraries, cuDNN or cuBLAS.
# A changed pin (either version) unpacks again.
# Environment: TLCM_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/tlcm-serve; without HOME the
# repository's .cache/), PYTHON (python3 with pip; only `pip download` is used, nothing is
# installed into Python), PIP_DOWNLOAD_ARGS (extra options for it, e.g.
# "--no-index --find-links docker/wheels" for offline builds).
# Progress goes to stderr; stdout is the folder alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=torch-version.env
source "$here/torch-version.env"
python="${PYTHON:-python3}"
arch="$(uname -m)"
cache="${TLCM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-$here/..}/.cache}/tlcm-serve}"
root="$cache/libtorch-${TORCH_VERSION}-${arch}"
stamp="torch ${TORCH_VERSION}, CUDA runtime ${CUDA_RUNTIME_VERSION}"
if [[ -f "$root/.complete" && "$(cat "$root/.complete")" == "$stamp" ]]; then
  echo "$root/torch"
  exit 0
fi

download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
echo "install-torch: downloading torch==${TORCH_VERSION} (${arch}) from PyPI" >&2
# The wheel's Python tag does not matter for LibTorch: pin one so the local Python's version
# does not change which file is fetched.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --platform "manylinux_2_28_${arch}" --platform "manylinux_2_25_${arch}" \
  --platform "manylinux_2_17_${arch}" --dest "$download" \
  "torch==${TORCH_VERSION}" "nvidia-cuda-runtime==${CUDA_RUNTIME_VERSION}" \
  "nvidia-cuda-cupti==${CUDA_RUNTIME_VERSION}" ${PIP_DOWNLOAD_ARGS:-} >&2

rm -rf "$root"
mkdir -p "$root"
"$python" - "$download" "$root" <<'PY'
import glob
import os
import re
import sys
import zipfile

download, root = sys.argv[1:]
# What a CPU build needs from the wheels: the headers and every shared library but the CUDA ones
# (1 GB of libtorch_cuda & co) and Python's; torch.libs/ holds the bundled ones of some wheels.
keep = re.compile(r"^torch/include/|^torch\.libs/|^torch/lib/[^/]+\.so[.0-9]*$"
                  r"|^nvidia/cu13/lib/lib(cudart|cupti)\.so[.0-9]*$")
skip = re.compile(r"^torch/lib/lib(torch_cuda[^/]*|c10_cuda|caffe2_nvrtc|torch_nvshmem|torch_python|"
                  r"torch)\.so")
for wheel in sorted(glob.glob(os.path.join(download, "*.whl"))):
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if keep.search(member.filename) and not skip.search(member.filename):
                archive.extract(member, root)
for name in ("torch/lib/libtorch_cpu.so", "torch/lib/libc10.so"):
    if not os.path.exists(os.path.join(root, name)):
        sys.exit(f"install-torch: {name} is not in the downloaded wheels")
PY
# Every library libtorch_cpu loads must resolve from the unpacked folders (its RPATHs).
if ldd "$root/torch/lib/libtorch_cpu.so" | grep "not found" >&2; then
  echo "install-torch: libtorch_cpu has unresolved libraries (above)" >&2
  exit 1
fi
echo "$stamp" > "$root/.complete"
echo "install-torch: LibTorch ${TORCH_VERSION} (CPU part) in $root/torch" >&2
echo "$root/torch"
