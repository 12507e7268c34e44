#include "wire/allowed_fast.h"

#include <algorithm>
#include <string>

#include "codec/sha.h"

namespace shoal::wire {

std::vector<uint32_t> AllowedFastSet(const std::array<uint8_t, 4>& ipv4,
                                     const std::array<uint8_t, 20>& info_hash,
                                     uint32_t num_pieces, size_t k) {
  std::vector<uint32_t> out;
  k = std::min<size_t>(k, num_pieces);
  // The peer's /24, then the info-hash; rehashed until k pieces come out.
  std::string x = {static_cast<char>(ipv4[0]), static_cast<char>(ipv4[1]),
                   static_cast<char>(ipv4[2]), '\0'};
  x.append(reinterpret_cast<const char*>(info_hash.data()), info_hash.size());
  while (out.size() < k) {
    const codec::Sha1Digest d = codec::Sha1::Hash(codec::AsBytes(x));
    x.assign(reinterpret_cast<const char*>(d.data()), d.size());
    for (int i = 0; i < 5 && out.size() < k; ++i) {
      const uint32_t y = (uint32_t{d[4 * i]} << 24) |
                         (uint32_t{d[4 * i + 1]} << 16) |
                         (uint32_t{d[4 * i + 2]} << 8) | d[4 * i + 3];
      const uint32_t index = y % num_pieces;
      if (std::find(out.begin(), out.end(), index) == out.end())
        out.push_back(index);
    }
  }
  return out;
}

}  // namespace shoal::wire
