# Imports the CPU part of a PyTorch wheel's LibTorch without its CMake config.
#
# The PyPI wheel's TorchConfig.cmake requires a full CUDA toolkit (it enables the CUDA language)
# even for code that only runs on CPU. To build and test the inference core against LibTorch 2.x
# on a machine without CUDA, configure with
#   -DTLCM_TORCH_WHEEL_CPU=$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# This defines what find_package(Torch) would: TORCH_LIBRARIES, TORCH_INCLUDE_DIRS, Torch_VERSION.
# GPU machines use find_package(Torch) with CMAKE_PREFIX_PATH instead (the normal path).
set(_wheel "${TLCM_TORCH_WHEEL_CPU}")
if(NOT EXISTS "${_wheel}/include/torch/version.h")
  message(FATAL_ERROR "TLCM_TORCH_WHEEL_CPU=${_wheel} is not a torch package folder")
endif()
file(STRINGS "${_wheel}/include/torch/version.h" _version_line REGEX "#define TORCH_VERSION \"")
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" Torch_VERSION "${_version_line}")
set(TORCH_INCLUDE_DIRS "${_wheel}/include" "${_wheel}/include/torch/csrc/api/include")
add_library(tlcm_torch_wheel_cpu INTERFACE)
target_include_directories(tlcm_torch_wheel_cpu SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(tlcm_torch_wheel_cpu INTERFACE
  "${_wheel}/lib/libtorch.so" "${_wheel}/lib/libtorch_cpu.so" "${_wheel}/lib/libc10.so")
target_link_options(tlcm_torch_wheel_cpu INTERFACE "-Wl,-rpath,${_wheel}/lib")
set(TORCH_LIBRARIES tlcm_torch_wheel_cpu)
set(TORCH_INSTALL_PREFIX "${_wheel}")
