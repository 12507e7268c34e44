#include "chunk/torrent_path.h"

#include <array>
#include <cstdint>

namespace shoal::chunk {
namespace {

// Decodes one UTF-8 code point at the start of `s`. Returns the code point
// and its length, or -1 and 1 for an invalid or truncated sequence (overlong
// forms and surrogates included).
std::pair<int32_t, size_t> DecodeUtf8(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {b0, 1};
  size_t len;
  int32_t cp;
  int32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {-1, 1};
  }
  if (s.size() < len) return {-1, 1};
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if ((b & 0xc0) != 0x80) return {-1, 1};
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    return {-1, 1};
  }
  return {cp, len};
}

bool IsFiltered(int32_t cp) {
  return cp == '/' || cp == '\\' || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x202a && cp <= 0x202e);
}

bool IsReservedWindowsName(std::string_view element) {
  std::string_view stem = element.substr(0, element.find('.'));
  std::string lower;
  for (char c : stem) {
    lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a')
                                         : c);
  }
  static constexpr std::array<std::string_view, 4> kNames = {"con", "prn",
                                                             "aux", "nul"};
  for (std::string_view n : kNames) {
    if (lower == n) return true;
  }
  if (lower.size() == 4 &&
      (lower.starts_with("com") || lower.starts_with("lpt"))) {
    return lower[3] >= '0' && lower[3] <= '9';
  }
  return false;
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CutUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t end = max;
  while (end > 0 && (static_cast<uint8_t>(s[end]) & 0xc0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

}  // namespace

std::string CleanPathElement(std::string_view element) {
  std::string out;
  out.reserve(element.size());
  for (size_t i = 0; i < element.size();) {
    auto [cp, len] = DecodeUtf8(element.substr(i));
    if (cp >= 0 && IsFiltered(cp)) {
      // dropped
    } else if (cp < 0) {
      out.push_back('_');  // invalid UTF-8
    } else if (cp < 0x20 || cp == 0x7f) {
      // control characters are dropped
    } else {
      out.append(element.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string SanitizePathElement(std::string_view element) {
  std::string out = CleanPathElement(element);
  if (out.empty() || out == "." || out == "..") return "_";
  if (IsReservedWindowsName(out)) out.insert(out.begin(), '_');
  if (out.size() > kMaxPathElementBytes) {
    size_t dot = out.rfind('.');
    std::string_view ext;
    if (dot != std::string::npos && out.size() - dot <= 10 && dot > 0) {
      ext = std::string_view(out).substr(dot);
    }
    std::string cut = CutUtf8(out, kMaxPathElementBytes - ext.size());
    cut.append(ext);
    out = std::move(cut);
  }
  return out;
}

}  // namespace shoal::chunk
