// Node IDs, endpoints and the BEP 42 node-ID restriction.
//
// A NodeId is a 160-bit Kademlia identifier; the distance between two IDs is
// their XOR, compared as a big-endian unsigned number:
//
//   NodeId a = ..., b = ...;
//   int shared = CommonPrefixLength(a, b);  // 0..160
//   bool a_closer = CloserTo(target, a, b);
//
// An Endpoint is an IPv4 (4 bytes) or IPv6 (16 bytes) address in network byte
// order and a port; it carries no socket type so that dht/ stays sans-I/O.
#ifndef SHOAL_DHT_NODE_ID_H_
#define SHOAL_DHT_NODE_ID_H_

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::dht {

// A 160-bit Kademlia ID (also used for info-hashes and lookup targets). A
// value type.
class NodeId {
 public:
  static constexpr size_t kSize = 20;
  static constexpr int kBits = 160;

  NodeId() { bytes_.fill(0); }
  explicit NodeId(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // The ID in `bytes`, or nullopt unless bytes.size() == 20.
  static std::optional<NodeId> FromBytes(std::string_view bytes);
  // An ID with every bit drawn from `random`.
  static NodeId Random(const std::function<uint64_t()>& random);
  // A random ID that shares exactly the first `prefix_bits` bits with `base`
  // and differs in the next one (if prefix_bits < 160).
  static NodeId RandomWithPrefix(const NodeId& base, int prefix_bits,
                                 const std::function<uint64_t()>& random);

  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(bytes_.data()), kSize};
  }
  const std::array<uint8_t, kSize>& array() const { return bytes_; }
  std::array<uint8_t, kSize>& mutable_array() { return bytes_; }
  std::string ToHex() const;

  // Bit `i` (0 = most significant).
  int Bit(int i) const { return (bytes_[i / 8] >> (7 - i % 8)) & 1; }
  // The number of leading zero bits (160 for the zero ID).
  int LeadingZeros() const;

  NodeId operator^(const NodeId& o) const;
  friend auto operator<=>(const NodeId&, const NodeId&) = default;
  friend bool operator==(const NodeId&, const NodeId&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const NodeId& id) {
    return H::combine(std::move(h), id.bytes());
  }

 private:
  std::array<uint8_t, kSize> bytes_;
};

// The number of leading bits `a` and `b` share (160 if equal).
inline int CommonPrefixLength(const NodeId& a, const NodeId& b) {
  return (a ^ b).LeadingZeros();
}

// True if `a` is strictly closer to `target` than `b` by XOR distance.
inline bool CloserTo(const NodeId& target, const NodeId& a, const NodeId& b) {
  return (a ^ target) < (b ^ target);
}

// An IPv4 or IPv6 address and a UDP port. A value type.
struct Endpoint {
  std::string address;  // 4 or 16 bytes, network byte order
  uint16_t port = 0;

  bool is_v4() const { return address.size() == 4; }
  bool is_v6() const { return address.size() == 16; }
  bool valid() const { return is_v4() || is_v6(); }

  // "1.2.3.4:6881" or "[::1]:6881".
  std::string ToString() const;
  // The compact form: address then big-endian port (6 or 18 bytes).
  std::string Compact() const;
  // Parses Compact() output; nullopt unless 6 or 18 bytes.
  static std::optional<Endpoint> FromCompact(std::string_view bytes);
  // An IPv4 endpoint from a host-order address, for tests and tools.
  static Endpoint V4(uint32_t address, uint16_t port);

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.address, e.port);
  }
};

// CRC32C (Castagnoli) of `data`, as BEP 42 uses it.
uint32_t Crc32c(std::string_view data);

// True if `id` satisfies BEP 42 for the address `ip` (4 or 16 bytes): its
// first 21 bits match the CRC32C of the masked address combined with the low
// 3 bits of id's last byte. Local and private addresses (10/8, 172.16/12,
// 192.168/16, 127/8, 169.254/16) are exempt and always valid.
bool IsValidNodeIdForIp(const NodeId& id, std::string_view ip);

// A random node ID that satisfies BEP 42 for `ip`, with `r` (0..255) as the
// last byte.
NodeId NodeIdForIp(std::string_view ip, uint8_t r,
                   const std::function<uint64_t()>& random);

}  // namespace shoal::dht

#endif  // SHOAL_DHT_NODE_ID_H_
