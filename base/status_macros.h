// Early-return helpers for absl::Status and absl::StatusOr.
//
// Our Abseil (20220623) has no status macros, so this header supplies the two
// everybody needs:
//
//   absl::Status Save() {
//     SHOAL_RETURN_IF_ERROR(Open());
//     SHOAL_ASSIGN_OR_RETURN(std::string data, Read());
//     ...
//   }
#ifndef SHOAL_BASE_STATUS_MACROS_H_
#define SHOAL_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SHOAL_STATUS_CONCAT_INNER_(a, b) a##b
#define SHOAL_STATUS_CONCAT_(a, b) SHOAL_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if
// not ok.
#define SHOAL_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status shoal_status_ = (expr);         \
    if (!shoal_status_.ok()) return shoal_status_; \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status if not ok,
// otherwise moves the value into `lhs`, which may be a declaration.
#define SHOAL_ASSIGN_OR_RETURN(lhs, rexpr) \
  SHOAL_ASSIGN_OR_RETURN_IMPL_(            \
      SHOAL_STATUS_CONCAT_(shoal_statusor_, __LINE__), lhs, rexpr)

#define SHOAL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // SHOAL_BASE_STATUS_MACROS_H_
