# Compiler warnings of first-party targets: the one place that sets them.
#
# tlcm_warnings(<target>...): -Wall -Wextra on the targets' own sources (PRIVATE, so nothing that
# links them inherits it), and -Werror as well when TLCM_WARNINGS_AS_ERRORS is ON (scripts/test.sh,
# so CI, turns it on; a developer build leaves it OFF so that a newer compiler's new warning does
# not stop a local build). Headers of LibTorch, gRPC, protobuf (the generated code too) and Abseil
# come in as system include folders, so their warnings never count. Every target built from our
# sources calls it: libraries, executables, tests, benchmarks.
option(TLCM_WARNINGS_AS_ERRORS "Make compiler warnings of first-party targets errors" OFF)

# GCC 12's flow-sensitive checks of inlined libstdc++ code (array bounds, string overflow and
# overlap) report std::string concatenations that are correct, depending on constant lengths such
# as the checkout path baked into TLCM_TEST_DATA_DIR: a CI clone elsewhere would fail where the
# developer build passed. They stay warnings, never errors.
set(TLCM_GCC_FALSE_POSITIVES
    -Wno-error=array-bounds -Wno-error=stringop-overflow -Wno-error=stringop-overread
    -Wno-error=restrict)

function(tlcm_warnings)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE -Wall -Wextra
                           $<$<BOOL:${TLCM_WARNINGS_AS_ERRORS}>:-Werror>
                           "$<$<CXX_COMPILER_ID:GNU>:${TLCM_GCC_FALSE_POSITIVES}>")
  endforeach()
endfunction()
