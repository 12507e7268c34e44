#include "api/http_util.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shoal::api {

RangeResult ParseRange(std::string_view header, uint64_t size, ByteRange& out) {
  if (header.empty()) return RangeResult::kNone;
  constexpr std::string_view kBytes = "bytes=";
  if (header.substr(0, kBytes.size()) != kBytes) return RangeResult::kIgnored;
  std::string_view spec = header.substr(kBytes.size());
  if (spec.find(',') != std::string_view::npos) return RangeResult::kIgnored;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::kIgnored;
  auto num = [](std::string_view s, uint64_t& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc() && p == s.data() + s.size();
  };
  const std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last n bytes
    uint64_t n = 0;
    if (!num(b, n)) return RangeResult::kIgnored;
    if (n == 0 || size == 0) return RangeResult::kUnsatisfiable;
    out.first = size - std::min(n, size);
    out.length = size - out.first;
    return RangeResult::kOk;
  }
  if (!num(a, first)) return RangeResult::kIgnored;
  if (b.empty()) {
    last = size ? size - 1 : 0;
  } else if (!num(b, last) || last < first) {
    return RangeResult::kIgnored;
  }
  if (first >= size) return RangeResult::kUnsatisfiable;
  last = std::min(last, size - 1);
  out.first = first;
  out.length = last - first + 1;
  return RangeResult::kOk;
}

std::string_view MimeTypeFor(std::string_view file_name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 26>
      kTypes = {{
          {"avif", "image/avif"},
          {"css", "text/css; charset=utf-8"},
          {"gif", "image/gif"},
          {"htm", "text/html; charset=utf-8"},
          {"html", "text/html; charset=utf-8"},
          {"ico", "image/x-icon"},
          {"jpeg", "image/jpeg"},
          {"jpg", "image/jpeg"},
          {"js", "text/javascript; charset=utf-8"},
          {"json", "application/json"},
          {"map", "application/json"},
          {"mjs", "text/javascript; charset=utf-8"},
          {"mp3", "audio/mpeg"},
          {"mp4", "video/mp4"},
          {"pdf", "application/pdf"},
          {"png", "image/png"},
          {"svg", "image/svg+xml"},
          {"txt", "text/plain; charset=utf-8"},
          {"wasm", "application/wasm"},
          {"webm", "video/webm"},
          {"webmanifest", "application/manifest+json"},
          {"webp", "image/webp"},
          {"woff", "font/woff"},
          {"woff2", "font/woff2"},
          {"xml", "application/xml"},
          {"zip", "application/zip"},
      }};
  constexpr std::string_view kDefault = "application/octet-stream";
  const size_t slash = file_name.find_last_of('/');
  if (slash != std::string_view::npos) file_name.remove_prefix(slash + 1);
  const size_t dot = file_name.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == file_name.size())
    return kDefault;
  std::string ext(file_name.substr(dot + 1));
  if (ext.size() > 16) return kDefault;
  for (char& c : ext)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  auto it = std::lower_bound(
      kTypes.begin(), kTypes.end(), ext,
      [](const auto& entry, const std::string& e) { return entry.first < e; });
  if (it != kTypes.end() && it->first == ext) return it->second;
  return kDefault;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int h = hex(s[i + 1]), l = hex(s[i + 2]);
    if (h < 0 || l < 0) return std::nullopt;
    const char c = static_cast<char>(h * 16 + l);
    if (c == '\0') return std::nullopt;
    out += c;
    i += 2;
  }
  return out;
}

std::optional<std::string> QueryParam(std::string_view query,
                                      std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == std::string_view::npos) return std::string();
    std::string value(pair.substr(eq + 1));
    for (char& c : value)
      if (c == '+') c = ' ';
    return PercentDecode(value);
  }
  return std::nullopt;
}

std::optional<std::string> SafePath(std::string_view url_path) {
  auto decoded = PercentDecode(url_path);
  if (!decoded || decoded->empty()) return std::nullopt;
  std::string_view rest = *decoded;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (seg.empty() || seg == "." || seg == ".." ||
        seg.find('\\') != std::string_view::npos)
      return std::nullopt;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return decoded;
}

std::string ContentDisposition(std::string_view file_name) {
  std::string ascii;
  bool plain = true;
  for (unsigned char c : file_name) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      ascii += '_';
    } else {
      ascii += static_cast<char>(c);
    }
  }
  std::string out = "inline; filename=\"" + ascii + "\"";
  if (!plain) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    out += "; filename*=UTF-8''";
    for (unsigned char c : file_name) {
      const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                        c == '_' || c == '~';
      if (safe) {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += kHex[c >> 4];
        out += kHex[c & 15];
      }
    }
  }
  return out;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string UrlEncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        c == '/') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ListingPage(std::string_view title,
                        const std::vector<ListingEntry>& entries,
                        bool has_parent) {
  const std::string t = HtmlEscape(title);
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", t,
      "</title></head>\n<body><h1>", t, "</h1>\n<ul>\n");
  if (has_parent) html += "<li><a href=\"../\">../</a></li>\n";
  for (const ListingEntry& e : entries) {
    const std::string href = UrlEncodePath(e.name) + (e.is_folder ? "/" : "");
    absl::StrAppend(&html, "<li><a href=\"", href, "\">", HtmlEscape(e.name),
                    e.is_folder ? "/" : "", "</a>");
    if (!e.is_folder) absl::StrAppend(&html, " (", e.length, " bytes)");
    html += "</li>\n";
  }
  html += "</ul></body></html>\n";
  return html;
}

}  // namespace shoal::api
