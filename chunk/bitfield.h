// A fixed-size set of piece indexes, stored as BitTorrent sends it (BEP 3): the
// high bit of the first byte is piece 0, and the spare bits of the last byte
// are zero.
#ifndef SHOAL_CHUNK_BITFIELD_H_
#define SHOAL_CHUNK_BITFIELD_H_

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::chunk {

// A value type.
class Bitfield {
 public:
  Bitfield() = default;
  explicit Bitfield(uint32_t size, bool value = false)
      : size_(size), bytes_((size + 7) / 8, value ? '\xff' : '\0') {
    ClearSpareBits();
    count_ = value ? size : 0;
  }

  // Parses `bytes` as a bitfield of `size` pieces. nullopt if the byte count is
  // wrong or a spare bit is set (BEP 3 says to drop such a peer).
  static std::optional<Bitfield> FromBytes(std::string_view bytes,
                                           uint32_t size) {
    if (bytes.size() != (size + 7) / 8) return std::nullopt;
    Bitfield b;
    b.size_ = size;
    b.bytes_ = std::string(bytes);
    if (size % 8 != 0 &&
        (static_cast<uint8_t>(b.bytes_.back()) & (0xff >> (size % 8))) != 0) {
      return std::nullopt;
    }
    for (char c : b.bytes_) b.count_ += std::popcount(static_cast<uint8_t>(c));
    return b;
  }

  uint32_t size() const { return size_; }
  uint32_t count() const { return count_; }
  bool all() const { return count_ == size_; }
  bool none() const { return count_ == 0; }

  // REQUIRES: i < size().
  bool test(uint32_t i) const {
    return static_cast<uint8_t>(bytes_[i / 8]) & Mask(i);
  }
  void set(uint32_t i, bool value = true) {
    if (test(i) == value) return;
    bytes_[i / 8] =
        static_cast<char>(static_cast<uint8_t>(bytes_[i / 8]) ^ Mask(i));
    count_ += value ? 1 : -1;
  }
  void SetAll() { *this = Bitfield(size_, true); }

  // The wire form.
  std::string_view bytes() const { return bytes_; }

  friend bool operator==(const Bitfield& a, const Bitfield& b) {
    return a.size_ == b.size_ && a.bytes_ == b.bytes_;
  }

 private:
  static uint8_t Mask(uint32_t i) {
    return static_cast<uint8_t>(0x80 >> (i % 8));
  }
  void ClearSpareBits() {
    if (size_ % 8 != 0 && !bytes_.empty()) {
      bytes_.back() = static_cast<char>(static_cast<uint8_t>(bytes_.back()) &
                                        (0xff << (8 - size_ % 8)));
    }
  }

  uint32_t size_ = 0;
  uint32_t count_ = 0;
  std::string bytes_;
};

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_BITFIELD_H_
