# Compiler warnings of first-party targets: the one place that sets them.
#
# tlcm_warnings(<target>...): -Wall -Wextra on the targets' own sources (PRIVATE, so nothing that
# links them inherits it), and -Werror as well when TLCM_WARNINGS_AS_ERRORS is ON (scripts/test.sh,
# so CI, turns it on; a developer build leaves it OFF so that a newer compiler's new warning does
# not stop a local build). Headers of LibTorch, gRPC, protobuf (the generated code too) and Abseil
# come in as system include folders, so their warnings never count. Every target built from our
# sources calls it: libraries, executables, tests, benchmarks.
option(TLCM_WARNINGS_AS_ERRORS "Make compiler warnings of first-party targets errors" OFF)

function(tlcm_warnings)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE -Wall -Wextra
                           $<$<BOOL:${TLCM_WARNINGS_AS_ERRORS}>:-Werror>)
  endforeach()
endfunction()
