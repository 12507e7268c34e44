// API authentication: bearer tokens with a role each, read from a token file.
//
// Token file: one token a line, optionally followed by whitespace and a role,
// `admin` (the default) or `read`; blank lines and lines starting with `#` are
// skipped. Every shoal.v1 RPC states the role it needs; a `read` token may call
// the read-only ones, an `admin` token everything. The standard health service
// and reflection take no token.
#ifndef SHOAL_API_AUTH_H_
#define SHOAL_API_AUTH_H_

#include <array>
#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/status.h"

namespace grpc {
class ServerContext;
}

namespace shoal::api {

enum class Role { kRead, kAdmin };

// Thread-safe (immutable once loaded).
class Authorizer {
 public:
  // Lets every call through: the API has no token file.
  Authorizer() = default;
  // Parses a token file's text. INVALID_ARGUMENT naming the line for a bad
  // role or a file with no token.
  static absl::StatusOr<Authorizer> Parse(std::string_view text);
  // Reads and parses `path`; NOT_FOUND / PERMISSION_DENIED naming the file.
  static absl::StatusOr<Authorizer> Load(const std::filesystem::path& path);

  bool enabled() const { return !tokens_.empty(); }

  // The role of a presented token; NOT_FOUND if no token matches. Compares in
  // constant time (digests with sodium_memcmp), whatever matches.
  absl::StatusOr<Role> RoleOf(std::string_view token) const;

  // OK if the call's `authorization: Bearer <token>` carries a token of
  // `needed` (or admin); UNAUTHENTICATED for a missing or unknown token,
  // PERMISSION_DENIED for a read token on an admin call. Failures are logged
  // with the peer's address, never the token.
  grpc::Status Check(const grpc::ServerContext* ctx, Role needed) const;

 private:
  struct Token {
    std::array<unsigned char, 32> digest;
    Role role;
  };
  std::vector<Token> tokens_;
};

}  // namespace shoal::api

#endif  // SHOAL_API_AUTH_H_
