# Sanitizer and fuzzing builds: the one place that adds their flags.
#
# TLCM_SANITIZE: a comma-separated -fsanitize= list for every target of the build, e.g.
#   "address,undefined" or "thread". Global flags (not per target) so that every library a test
#   links is instrumented alike; libraries from Debian (gRPC, protobuf, GoogleTest, LibTorch)
#   are not. Any undefined behaviour aborts (no recovery), so a test or fuzz run fails on it.
# TLCM_ABSL_SOURCE_DIR: an Abseil source tree built as part of this build instead of the
#   installed one. ThreadSanitizer understands absl::Mutex only when Abseil itself is built with
#   it (scripts/sanitize.sh fetches Debian's Abseil source). Debian's gRPC links Debian's Abseil,
#   so this needs TLCM_BUILD_SERVER=OFF.
# TLCM_BUILD_FUZZERS: the libFuzzer targets of tests/fuzz/ (clang only). Every target is then
#   compiled with -fsanitize=fuzzer-no-link so that the code under test reports coverage.
set(TLCM_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined or thread")
set(TLCM_ABSL_SOURCE_DIR "" CACHE PATH "Abseil source tree to build instead of the installed one")
option(TLCM_BUILD_FUZZERS "Build the libFuzzer targets in tests/fuzz/ (clang)" OFF)

if(TLCM_SANITIZE)
  add_compile_options(-fsanitize=${TLCM_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${TLCM_SANITIZE})
  message(STATUS "Sanitizers: ${TLCM_SANITIZE}")
endif()

if(TLCM_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TLCM_BUILD_FUZZERS needs clang (libFuzzer): "
                        "configure with -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(TLCM_ABSL_SOURCE_DIR)
  if(TLCM_BUILD_SERVER)
    message(FATAL_ERROR "TLCM_ABSL_SOURCE_DIR needs TLCM_BUILD_SERVER=OFF "
                        "(Debian's gRPC links Debian's Abseil)")
  endif()
  set(ABSL_PROPAGATE_CXX_STD ON)
  set(BUILD_TESTING OFF)
  add_subdirectory("${TLCM_ABSL_SOURCE_DIR}" absl EXCLUDE_FROM_ALL)
else()
  find_package(absl CONFIG REQUIRED)
endif()
