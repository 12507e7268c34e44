#include "tracker/lsd.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shoal::tracker {
namespace {

std::string Hex(const std::array<uint8_t, 20>& h) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool IsHex(std::string_view s) {
  for (char c : s)
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string EncodeLsdAnnounce(const LsdAnnounce& a, bool v6) {
  std::string out = absl::StrCat(
      "BT-SEARCH * HTTP/1.1\r\nHost: ",
      v6 ? absl::StrCat("[", kLsdGroupV6, "]") : std::string(kLsdGroupV4), ":",
      kLsdPort, "\r\nPort: ", a.port, "\r\n");
  for (const auto& h : a.info_hashes)
    absl::StrAppend(&out, "Infohash: ", Hex(h), "\r\n");
  if (!a.cookie.empty()) absl::StrAppend(&out, "cookie: ", a.cookie, "\r\n");
  out += "\r\n\r\n";
  return out;
}

absl::StatusOr<LsdAnnounce> ParseLsdAnnounce(std::string_view datagram) {
  size_t pos = datagram.find('\n');
  if (pos == std::string_view::npos ||
      !Trim(datagram.substr(0, pos)).starts_with("BT-SEARCH * HTTP/1.")) {
    return absl::InvalidArgumentError("lsd: not a BT-SEARCH message");
  }
  LsdAnnounce a;
  bool have_port = false;
  while (pos < datagram.size()) {
    const size_t next = datagram.find('\n', pos + 1);
    const std::string_view line = Trim(datagram.substr(
        pos + 1, next == std::string_view::npos ? std::string_view::npos
                                                : next - pos - 1));
    pos = next == std::string_view::npos ? datagram.size() : next;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name =
        absl::AsciiStrToLower(std::string(Trim(line.substr(0, colon))));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (name == "port") {
      uint32_t port = 0;
      if (!absl::SimpleAtoi(std::string(value), &port) || port == 0 ||
          port > 65535)
        return absl::InvalidArgumentError("lsd: bad port");
      a.port = static_cast<uint16_t>(port);
      have_port = true;
    } else if (name == "infohash") {
      if (value.size() != 40 || !IsHex(value) ||
          a.info_hashes.size() >= kLsdMaxHashes)
        continue;
      const std::string bytes = absl::HexStringToBytes(std::string(value));
      std::array<uint8_t, 20> h;
      std::copy(bytes.begin(), bytes.end(), h.begin());
      a.info_hashes.push_back(h);
    } else if (name == "cookie") {
      a.cookie = std::string(value.substr(0, 64));
    }
  }
  if (!have_port) return absl::InvalidArgumentError("lsd: no port");
  if (a.info_hashes.empty())
    return absl::InvalidArgumentError("lsd: no info-hash");
  return a;
}

}  // namespace shoal::tracker
