# Imports the CPU part of a PyTorch wheel's LibTorch without its CMake config.
#
# The PyPI wheel's TorchConfig.cmake requires a full CUDA toolkit (it enables the CUDA language)
# even for code that only runs on CPU. To build and test the inference core against LibTorch 2.x
# on a machine without CUDA, configure with
#   -DTLCM_TORCH_WHEEL_CPU=$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
# This defines what find_package(Torch) would: TORCH_LIBRARIES, TORCH_INCLUDE_DIRS, Torch_VERSION.
# GPU machines use find_package(Torch) with CMAKE_PREFIX_PATH instead (the normal path).
set(_wheel "${TLCM_TORCH_WHEEL_CPU}")
# The version macros: torch/headeronly/version.h from 2.10 on (torch/version.h includes it),
# torch/version.h under the C++ API include folder in earlier 2.x wheels, include/torch/ in others.
find_file(_version_header NAMES torch/headeronly/version.h torch/version.h NO_DEFAULT_PATH NO_CACHE
  PATHS "${_wheel}/include" "${_wheel}/include/torch/csrc/api/include")
if(NOT _version_header)
  message(FATAL_ERROR "TLCM_TORCH_WHEEL_CPU=${_wheel} is not a torch package folder "
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
add_library(tlcm_torch_wheel_cpu INTERFACE)
target_include_directories(tlcm_torch_wheel_cpu SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(tlcm_torch_wheel_cpu INTERFACE
  "${_wheel}/lib/libtorch.so" "${_wheel}/lib/libtorch_cpu.so" "${_wheel}/lib/libc10.so")
target_link_options(tlcm_torch_wheel_cpu INTERFACE "-Wl,-rpath,${_wheel}/lib")
set(TORCH_LIBRARIES tlcm_torch_wheel_cpu)
set(TORCH_INSTALL_PREFIX "${_wheel}")
