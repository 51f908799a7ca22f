// Status propagation macros. Debian's Abseil (20220623) ships neither RETURN_IF_ERROR nor
// ASSIGN_OR_RETURN, so the project defines them once, here.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TLCM_STATUS_CONCAT_INNER(a, b) a##b
#define TLCM_STATUS_CONCAT(a, b) TLCM_STATUS_CONCAT_INNER(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function unless it is OK.
#define TLCM_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status tlcm_status_ = (expr);        \
    if (!tlcm_status_.ok()) return tlcm_status_; \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>); returns its status from the enclosing function
// when it holds an error. `lhs` may be a declaration: TLCM_ASSIGN_OR_RETURN(auto x, Make());
#define TLCM_ASSIGN_OR_RETURN(lhs, rexpr) \
  TLCM_ASSIGN_OR_RETURN_IMPL(TLCM_STATUS_CONCAT(tlcm_statusor_, __LINE__), lhs, rexpr)

// `statusor` is a name and `lhs` may be a declaration: neither can be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define TLCM_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)
