#include "api/auth.h"

#include <grpcpp/server_context.h>
#include <sodium.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/token_file.h"
#include "spdlog/spdlog.h"

namespace shoal::api {
namespace {

std::array<unsigned char, 32> Digest(std::string_view token) {
  std::array<unsigned char, 32> d;
  crypto_generichash(d.data(), d.size(),
                     reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return d;
}

// "ipv4:10.0.0.1:5000" -> "10.0.0.1:5000", "ipv6:[::1]:5000" -> "[::1]:5000".
std::string PeerAddress(const grpc::ServerContext* ctx) {
  std::string peer = ctx->peer();
  for (std::string_view prefix : {"ipv4:", "ipv6:"}) {
    if (peer.compare(0, prefix.size(), prefix) == 0)
      return peer.substr(prefix.size());
  }
  return peer;
}

}  // namespace

absl::StatusOr<Authorizer> Authorizer::Parse(std::string_view text) {
  if (sodium_init() < 0)
    return absl::InternalError("libsodium failed to start");
  auto entries = ParseTokenFile(text);
  if (!entries.ok()) return entries.status();
  Authorizer a;
  for (const TokenEntry& e : *entries) {
    const int number = e.line;
    Role role;
    if (e.role == "admin") {
      role = Role::kAdmin;
    } else if (e.role == "read") {
      role = Role::kRead;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("line ", number,
                                                     ": unknown role '", e.role,
                                                     "' (use admin or read)"));
    }
    if (e.token.size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", number, ": a token must be at least 16 characters"));
    }
    a.tokens_.push_back(Token{Digest(e.token), role});
  }
  return a;
}

absl::StatusOr<Authorizer> Authorizer::Load(const std::filesystem::path& path) {
  auto text = ReadTokenFile(path);
  if (!text.ok()) return text.status();
  auto a = Parse(*text);
  if (!a.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "API token file ", path.string(), ": ", a.status().message()));
  }
  return a;
}

absl::StatusOr<Role> Authorizer::RoleOf(std::string_view token) const {
  const auto d = Digest(token);
  // Every entry is compared, so the time taken does not depend on which one
  // (if any) matches.
  int found = -1;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (sodium_memcmp(d.data(), tokens_[i].digest.data(), d.size()) == 0)
      found = static_cast<int>(i);
  }
  if (found < 0) return absl::NotFoundError("unknown token");
  return tokens_[found].role;
}

grpc::Status Authorizer::Check(const grpc::ServerContext* ctx,
                               Role needed) const {
  if (tokens_.empty()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    spdlog::warn("API call from {} without a token refused", PeerAddress(ctx));
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this node's API needs a token (set SHOAL_API_TOKEN "
                        "or --api-token-file)");
  }
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(
          absl::string_view(value.data(), kBearer.size()),
          absl::string_view(kBearer.data(), kBearer.size()))) {
    spdlog::warn("API call from {} with a malformed authorization refused",
                 PeerAddress(ctx));
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "authorization must be 'Bearer <token>'");
  }
  auto role = RoleOf(value.substr(kBearer.size()));
  if (!role.ok()) {
    spdlog::warn("API call from {} with an unknown token refused",
                 PeerAddress(ctx));
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the API token is not valid for this node");
  }
  if (needed == Role::kAdmin && *role != Role::kAdmin) {
    spdlog::warn("API call from {} with a read token refused (needs admin)",
                 PeerAddress(ctx));
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "this call needs an admin token; the token given is "
                        "read-only");
  }
  return grpc::Status::OK;
}

}  // namespace shoal::api
