# Imports a PyTorch wheel's LibTorch without its CMake config.
#
# The wheel's TorchConfig.cmake wants a full CUDA toolkit (it enables the CUDA language, needs
# nvcc and the driver stub) even though nothing here compiles CUDA code. Importing the libraries
# directly needs only the wheel itself, so the same command works on a CPU-only machine, on a GPU
# machine without a toolkit and in a container build stage on a plain Debian base:
#   -DTLCM_TORCH_WHEEL=$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# This defines what find_package(Torch) would: TORCH_LIBRARIES, TORCH_INCLUDE_DIRS, Torch_VERSION,
# TORCH_INSTALL_PREFIX, and C10_CUDA_LIBRARY when the CUDA part is imported.
#
# CUDA wheels (lib/libtorch_cuda.so present): libtorch_cuda and libc10_cuda are linked with
# --no-as-needed, because nothing references them by symbol; their static initialisers register
# the CUDA kernels and hooks. The CUDA runtime headers that c10/cuda needs come from the nvidia-*
# pip packages next to torch (site-packages/nvidia/cu13/include for CUDA 13 wheels,
# nvidia/{cuda_runtime,cuda_nvcc}/include for CUDA 12 ones).
# TLCM_TORCH_WHEEL_CUDA=OFF imports the CPU part only; so does a wheel without libtorch_cuda.so.
set(_wheel "${TLCM_TORCH_WHEEL}")
# The version macros: torch/headeronly/version.h from 2.10 on (torch/version.h includes it),
# torch/version.h under the C++ API include folder in earlier 2.x wheels, include/torch/ in others.
find_file(_version_header NAMES torch/headeronly/version.h torch/version.h NO_DEFAULT_PATH NO_CACHE
  PATHS "${_wheel}/include" "${_wheel}/include/torch/csrc/api/include")
if(NOT _version_header)
  message(FATAL_ERROR "TLCM_TORCH_WHEEL=${_wheel} is not a torch package folder "
                      "(no torch/headeronly/version.h or torch/version.h under include/)")
endif()
file(STRINGS "${_version_header}" _version_lines REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
set(Torch_VERSION "")
foreach(_part MAJOR MINOR PATCH)
  string(REGEX MATCH "TORCH_VERSION_${_part} ([0-9]+)" _match "${_version_lines}")
  list(APPEND Torch_VERSION "${CMAKE_MATCH_1}")
endforeach()
string(REPLACE ";" "." Torch_VERSION "${Torch_VERSION}")
set(TORCH_INCLUDE_DIRS "${_wheel}/include" "${_wheel}/include/torch/csrc/api/include")
add_library(tlcm_torch_wheel INTERFACE)
# libtorch.so is only a shim that loads libtorch_cpu and libtorch_cuda: a CPU import (what
# scripts/install-torch.sh unpacks) links libtorch_cpu and libc10 alone.
target_link_libraries(tlcm_torch_wheel INTERFACE
  "${_wheel}/lib/libtorch_cpu.so" "${_wheel}/lib/libc10.so")
target_link_options(tlcm_torch_wheel INTERFACE "-Wl,-rpath,${_wheel}/lib")

option(TLCM_TORCH_WHEEL_CUDA "Import the CUDA part of a CUDA wheel given in TLCM_TORCH_WHEEL" ON)
if(TLCM_TORCH_WHEEL_CUDA AND EXISTS "${_wheel}/lib/libtorch_cuda.so")
  target_link_libraries(tlcm_torch_wheel INTERFACE
    "-Wl,--no-as-needed" "${_wheel}/lib/libtorch.so" "${_wheel}/lib/libtorch_cuda.so"
    "${_wheel}/lib/libc10_cuda.so" "-Wl,--as-needed")
  # cuda_runtime_api.h is in the runtime package; the crt/ headers it includes ship with another
  # one that is not a torch dependency: nvidia-cuda-crt for CUDA 13 wheels (nvidia/cu13/include),
  # nvidia-cuda-nvcc-cu12 for CUDA 12 ones. Install it at the runtime's version.
  get_filename_component(_site_packages "${_wheel}" DIRECTORY)
  set(_cuda_headers_found TRUE)
  foreach(_header cuda_runtime_api.h crt/host_defines.h)
    find_path(_include_dir "${_header}" NO_DEFAULT_PATH NO_CACHE
      PATHS "${_site_packages}/nvidia/cu13/include" "${_site_packages}/nvidia/cuda_runtime/include"
            "${_site_packages}/nvidia/cuda_nvcc/include")
    if(_include_dir)
      list(APPEND TORCH_INCLUDE_DIRS "${_include_dir}")
    else()
      set(_cuda_headers_found FALSE)
    endif()
    unset(_include_dir)
  endforeach()
  if(_cuda_headers_found)
    set(C10_CUDA_LIBRARY "${_wheel}/lib/libc10_cuda.so")
    message(STATUS "TLCM_TORCH_WHEEL: CUDA wheel, libtorch_cuda linked")
  else()
    # GPUs work; only the device-memory gauges stay empty (they read the CUDA allocator).
    message(WARNING "TLCM_TORCH_WHEEL: CUDA wheel, libtorch_cuda linked, but cuda_runtime_api.h "
                    "or crt/host_defines.h is not under ${_site_packages}/nvidia/{cu13,cuda_runtime,"
                    "cuda_nvcc}/include, so no CUDA memory metrics: pip install nvidia-cuda-crt "
                    "(CUDA 13) or nvidia-cuda-nvcc-cu12 (CUDA 12) at the CUDA runtime's version")
  endif()
endif()
list(REMOVE_DUPLICATES TORCH_INCLUDE_DIRS)
target_include_directories(tlcm_torch_wheel SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
set(TORCH_LIBRARIES tlcm_torch_wheel)
set(TORCH_INSTALL_PREFIX "${_wheel}")
