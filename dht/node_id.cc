#include "dht/node_id.h"

#include <bit>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shoal::dht {

std::optional<NodeId> NodeId::FromBytes(std::string_view bytes) {
  if (bytes.size() != kSize) return std::nullopt;
  NodeId id;
  for (size_t i = 0; i < kSize; ++i) {
    id.bytes_[i] = static_cast<uint8_t>(bytes[i]);
  }
  return id;
}

NodeId NodeId::Random(const std::function<uint64_t()>& random) {
  NodeId id;
  uint64_t r = 0;
  for (size_t i = 0; i < kSize; ++i) {
    if (i % 8 == 0) r = random();
    id.bytes_[i] = static_cast<uint8_t>(r >> (8 * (i % 8)));
  }
  return id;
}

NodeId NodeId::RandomWithPrefix(const NodeId& base, int prefix_bits,
                                const std::function<uint64_t()>& random) {
  NodeId id = Random(random);
  for (int i = 0; i < prefix_bits && i < kBits; ++i) {
    uint8_t mask = static_cast<uint8_t>(0x80 >> (i % 8));
    id.bytes_[i / 8] = (id.bytes_[i / 8] & ~mask) | (base.bytes_[i / 8] & mask);
  }
  if (prefix_bits < kBits) {
    int i = prefix_bits;
    uint8_t mask = static_cast<uint8_t>(0x80 >> (i % 8));
    id.bytes_[i / 8] =
        (id.bytes_[i / 8] & ~mask) | (~base.bytes_[i / 8] & mask);
  }
  return id;
}

std::string NodeId::ToHex() const {
  std::string out;
  for (uint8_t b : bytes_) absl::StrAppendFormat(&out, "%02x", b);
  return out;
}

int NodeId::LeadingZeros() const {
  for (size_t i = 0; i < kSize; ++i) {
    if (bytes_[i] != 0)
      return static_cast<int>(i * 8) + std::countl_zero(bytes_[i]);
  }
  return kBits;
}

NodeId NodeId::operator^(const NodeId& o) const {
  NodeId r;
  for (size_t i = 0; i < kSize; ++i) r.bytes_[i] = bytes_[i] ^ o.bytes_[i];
  return r;
}

std::string Endpoint::ToString() const {
  const auto* a = reinterpret_cast<const uint8_t*>(address.data());
  if (is_v4())
    return absl::StrFormat("%d.%d.%d.%d:%d", a[0], a[1], a[2], a[3], port);
  if (is_v6()) {
    std::string out = "[";
    for (int i = 0; i < 16; i += 2) {
      if (i) out += ':';
      absl::StrAppendFormat(&out, "%x", (a[i] << 8) | a[i + 1]);
    }
    return absl::StrCat(out, "]:", port);
  }
  return "invalid";
}

std::string Endpoint::Compact() const {
  std::string out = address;
  out.push_back(static_cast<char>(port >> 8));
  out.push_back(static_cast<char>(port & 0xff));
  return out;
}

std::optional<Endpoint> Endpoint::FromCompact(std::string_view bytes) {
  if (bytes.size() != 6 && bytes.size() != 18) return std::nullopt;
  Endpoint e;
  e.address = std::string(bytes.substr(0, bytes.size() - 2));
  e.port = static_cast<uint16_t>(
      (static_cast<uint8_t>(bytes[bytes.size() - 2]) << 8) |
      static_cast<uint8_t>(bytes[bytes.size() - 1]));
  return e;
}

Endpoint Endpoint::V4(uint32_t address, uint16_t port) {
  Endpoint e;
  e.address = {static_cast<char>(address >> 24),
               static_cast<char>(address >> 16),
               static_cast<char>(address >> 8), static_cast<char>(address)};
  e.port = port;
  return e;
}

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xffffffffu;
  for (char c : data) {
    crc ^= static_cast<uint8_t>(c);
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

namespace {

bool IsLocal(std::string_view ip) {
  const auto* a = reinterpret_cast<const uint8_t*>(ip.data());
  if (ip.size() == 4) {
    return a[0] == 10 || a[0] == 127 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
           (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254);
  }
  if (ip.size() == 16) {
    bool loopback = true;
    for (int i = 0; i < 15; ++i) loopback = loopback && a[i] == 0;
    return (loopback && a[15] == 1) || (a[0] & 0xfe) == 0xfc ||
           (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
  }
  return false;
}

// The CRC32C of the masked address with `r` folded in, per BEP 42.
uint32_t MaskedCrc(std::string_view ip, uint8_t r) {
  static constexpr uint8_t kV4Mask[] = {0x03, 0x0f, 0x3f, 0xff};
  static constexpr uint8_t kV6Mask[] = {0x01, 0x03, 0x07, 0x0f,
                                        0x1f, 0x3f, 0x7f, 0xff};
  size_t n = ip.size() == 4 ? 4 : 8;
  const uint8_t* mask = ip.size() == 4 ? kV4Mask : kV6Mask;
  std::string masked(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    masked[i] = static_cast<char>(static_cast<uint8_t>(ip[i]) & mask[i]);
  }
  masked[0] =
      static_cast<char>(static_cast<uint8_t>(masked[0]) | ((r & 7) << 5));
  return Crc32c(masked);
}

}  // namespace

bool IsValidNodeIdForIp(const NodeId& id, std::string_view ip) {
  if (ip.size() != 4 && ip.size() != 16) return false;
  if (IsLocal(ip)) return true;
  const auto& b = id.array();
  uint32_t crc = MaskedCrc(ip, b[19]);
  return b[0] == ((crc >> 24) & 0xff) && b[1] == ((crc >> 16) & 0xff) &&
         (b[2] & 0xf8) == ((crc >> 8) & 0xf8);
}

NodeId NodeIdForIp(std::string_view ip, uint8_t r,
                   const std::function<uint64_t()>& random) {
  NodeId id = NodeId::Random(random);
  uint32_t crc = MaskedCrc(ip, r);
  auto& b = id.mutable_array();
  b[0] = (crc >> 24) & 0xff;
  b[1] = (crc >> 16) & 0xff;
  b[2] = ((crc >> 8) & 0xf8) | (b[2] & 7);
  b[19] = r;
  return id;
}

}  // namespace shoal::dht
