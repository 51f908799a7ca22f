#!/usr/bin/env bash
# Runs tlcm_engine_tests under ThreadSanitizer (a developer check, not part of CI).
# TSan only understands absl::Mutex when Abseil itself is built with -fsanitize=thread, so this
# fetches Debian's Abseil source (apt-get source, with a private deb-src list: the system's apt
# configuration is left alone) and builds it together with the engine in a scratch folder.
# Usage: scripts/engine-tsan.sh [work dir, default /tmp/tlcm-tsan] [extra gtest flags...]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/tmp/tlcm-tsan}"
shift || true
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/src"
if [ ! -d "$WORK/src/abseil" ]; then
  echo "deb-src http://deb.debian.org/debian bookworm main" > "$WORK/apt/src.list"
  APT=(-o Dir::Etc::SourceList="$WORK/apt/src.list" -o Dir::Etc::SourceParts=/dev/null
       -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache="$WORK/apt/cache")
  apt-get "${APT[@]}" update -qq
  (cd "$WORK/src" && apt-get "${APT[@]}" source --download-only abseil)
  tar -C "$WORK/src" -xzf "$WORK"/src/abseil_*.orig.tar.gz
  mv "$WORK"/src/abseil-2* "$WORK/src/abseil"
  # Same options (inline namespace, absl:: types instead of std::) as the installed Abseil.
  cp /usr/include/absl/base/options.h "$WORK/src/abseil/absl/base/options.h"
fi
cat > "$WORK/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(tlcm_engine_tsan LANGUAGES C CXX)
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
add_compile_options(-fsanitize=thread -O1 -g)
add_link_options(-fsanitize=thread)
set(ABSL_PROPAGATE_CXX_STD ON)
set(BUILD_TESTING OFF)
add_subdirectory($WORK/src/abseil absl EXCLUDE_FROM_ALL)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(WEBP REQUIRED IMPORTED_TARGET libwebp)
find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
file(GLOB IMAGE_SOURCES $REPO/src/image/*.cc)
add_library(tlcm_image STATIC \${IMAGE_SOURCES})
target_include_directories(tlcm_image PUBLIC $REPO/src)
target_link_libraries(tlcm_image PUBLIC absl::status absl::statusor absl::strings
                      PRIVATE PNG::PNG JPEG::JPEG PkgConfig::WEBP)
file(GLOB ENGINE_SOURCES $REPO/src/engine/*.cc)
add_library(tlcm_engine STATIC \${ENGINE_SOURCES})
target_link_libraries(tlcm_engine PUBLIC tlcm_image absl::status absl::statusor absl::strings
  absl::synchronization absl::time absl::hash absl::flat_hash_map absl::flat_hash_set
  absl::random_random absl::str_format Threads::Threads)
file(GLOB TEST_SOURCES $REPO/tests/engine/*.cc)
add_executable(tlcm_engine_tests \${TEST_SOURCES})
target_include_directories(tlcm_engine_tests PRIVATE $REPO/tests)
target_link_libraries(tlcm_engine_tests PRIVATE tlcm_engine JPEG::JPEG PkgConfig::WEBP
  GTest::gtest GTest::gmock GTest::gtest_main)
CMAKE
cmake -S "$WORK" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C "$WORK/build" -j2 tlcm_engine_tests
# Abseil's per-thread identities live in memory its low-level allocator mmaps and recycles;
# TSan then reports the first atomic on a recycled identity against the mmap (not our code).
echo "race:absl::*synchronization_internal::Waiter::Post" > "$WORK/tsan.supp"
TSAN_OPTIONS="halt_on_error=1 suppressions=$WORK/tsan.supp" \
  "$WORK/build/tlcm_engine_tests" "$@"
