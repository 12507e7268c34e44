// Small HTTP helpers of the gateway, kept apart so that they are unit-tested:
// byte ranges, content types, query parameters and percent-decoding.
#ifndef SHOAL_API_HTTP_UTIL_H_
#define SHOAL_API_HTTP_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::api {

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

enum class RangeResult { kNone, kOk, kUnsatisfiable, kIgnored };

// Parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" against a content of
// `size` bytes. Several ranges, or anything malformed, are ignored (the whole
// content is sent), as RFC 9110 allows.
RangeResult ParseRange(std::string_view header, uint64_t size, ByteRange& out);

// The Content-Type for a file name, by its extension (case-insensitive):
// the common web types, "application/octet-stream" otherwise.
std::string_view MimeTypeFor(std::string_view file_name);

// Percent-decodes `s` ("%20" -> " "); nullopt for a malformed escape or an
// encoded NUL.
std::optional<std::string> PercentDecode(std::string_view s);

// The decoded value of `name` in a query string ("a=1&filename=x.css"), if
// present and well-formed.
std::optional<std::string> QueryParam(std::string_view query,
                                      std::string_view name);

// A URL path below a resource ("dir/a%20b.css") as a relative file path:
// percent-decoded, segments joined by '/'. nullopt for an empty path, an empty,
// "." or ".." segment, a backslash or a NUL: such paths never reach a lookup.
std::optional<std::string> SafePath(std::string_view url_path);

// `s` with &, <, >, " and ' as HTML character references.
std::string HtmlEscape(std::string_view s);

// `path` ('/'-separated) percent-encoded for a URL: every byte but unreserved
// characters and '/' is escaped.
std::string UrlEncodePath(std::string_view path);

// An HTML page listing a folder's entries: folders first marked with '/',
// links relative to the folder's URL (which ends with '/'), sizes of files.
// `title` names the folder.
struct ListingEntry {
  std::string name;
  bool is_folder = false;
  uint64_t length = 0;
};
std::string ListingPage(std::string_view title,
                        const std::vector<ListingEntry>& entries,
                        bool has_parent);

// A Content-Disposition value naming `file_name` (RFC 6266: an ASCII
// fallback and, when needed, the UTF-8 name in filename*).
std::string ContentDisposition(std::string_view file_name);

}  // namespace shoal::api

#endif  // SHOAL_API_HTTP_UTIL_H_
