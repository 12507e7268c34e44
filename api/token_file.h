// The API token file, shared by shoald (which checks tokens) and the CLI
// (which sends the first one). No gRPC or libsodium here, so the CLI stays
// light.
//
// One token a line, optionally followed by whitespace and a role (`admin`,
// the default, or `read`); blank lines and lines starting with `#` are
// skipped.
#ifndef SHOAL_API_TOKEN_FILE_H_
#define SHOAL_API_TOKEN_FILE_H_

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::api {

struct TokenEntry {
  int line = 0;
  std::string token;
  std::string role;  // as written; "admin" when absent
};

// INVALID_ARGUMENT naming the line for a malformed line, or for a file with no
// token.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(std::string_view text);

// The file's bytes; NOT_FOUND naming it if it can't be read.
absl::StatusOr<std::string> ReadTokenFile(const std::filesystem::path& path);

}  // namespace shoal::api

#endif  // SHOAL_API_TOKEN_FILE_H_
