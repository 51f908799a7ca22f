#!/usr/bin/env bash
# Assembles a CUDA "toolkit" folder from the nvidia-* pip packages that the PyPI torch wheel
# depends on (plus nvidia-cuda-nvcc-cu12), so that CMake's find_package(Torch) accepts the
# wheel's CUDA LibTorch on a machine without a system CUDA installation (e.g. to build and run
# the CPU tests against LibTorch 2.x). Not needed where CUDA is installed.
#   scripts/cuda-toolkit-from-wheels.sh SITE_PACKAGES OUT_DIR
# then configure with  -DCUDAToolkit_ROOT=OUT_DIR -DCMAKE_CUDA_COMPILER=OUT_DIR/bin/nvcc
set -euo pipefail
site=${1:?site-packages folder}
out=${2:?output folder}
nv="$site/nvidia"
mkdir -p "$out/bin" "$out/include" "$out/lib64"
for pkg in "$nv"/*/; do
  [ -d "$pkg/include" ] && for f in "$pkg"/include/*; do ln -sfn "$f" "$out/include/$(basename "$f")"; done
  [ -d "$pkg/lib" ] && for f in "$pkg"/lib/*.so*; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    ln -sfn "$f" "$out/lib64/$base"
    # CMake looks for the unversioned name: libcudart.so -> libcudart.so.12
    ln -sfn "$f" "$out/lib64/${base%%.so*}.so"
  done
done
# The nvcc wheels ship ptxas but no nvcc driver. tlcm-serve compiles no CUDA code, and CMake only
# asks nvcc for its version, so a stand-in answers that and refuses to compile anything.
runtime_version=$("$site"/../../../bin/python -c 'import torch; print(torch.version.cuda)' 2>/dev/null || echo 12.6)
cat > "$out/bin/nvcc" <<NVCC
#!/bin/sh
# Stand-in for nvcc (see scripts/cuda-toolkit-from-wheels.sh): version queries only.
if [ "\$1" = "--version" ] || [ "\$1" = "-V" ]; then
  echo "Cuda compilation tools, release ${runtime_version}, V${runtime_version}.0"
  exit 0
fi
echo "nvcc stand-in: cannot compile CUDA code" >&2
exit 1
NVCC
chmod +x "$out/bin/nvcc"
echo "CUDA toolkit view in $out (CUDA ${runtime_version})"
