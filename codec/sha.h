// SHA-256 and SHA-1 through OpenSSL's EVP interface, which uses the CPU's SHA
// extensions.
//
//   Sha256 h;
//   h.Update(data);
//   Sha256Digest d = h.Final();
//
// or, for one buffer, Sha256::Hash(data).
#ifndef SHOAL_CODEC_SHA_H_
#define SHOAL_CODEC_SHA_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

struct evp_md_ctx_st;

namespace shoal::codec {

using Sha256Digest = std::array<uint8_t, 32>;
using Sha1Digest = std::array<uint8_t, 20>;

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// The SHA-256 digests packed in `bytes` (32 bytes each; a partial tail is
// ignored), as piece layers and BEP 52 hash messages carry them.
inline std::vector<Sha256Digest> SplitDigests(std::string_view bytes) {
  std::vector<Sha256Digest> out(bytes.size() / 32);
  for (size_t i = 0; i < out.size(); ++i)
    std::memcpy(out[i].data(), bytes.data() + 32 * i, 32);
  return out;
}

// Incremental SHA-256. Not thread-safe; one instance per thread.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data) { Update(AsBytes(data)); }
  // Returns the digest and resets the hasher for reuse.
  Sha256Digest Final();

  static Sha256Digest Hash(std::span<const uint8_t> data);
  static Sha256Digest Hash(std::string_view data) {
    return Hash(AsBytes(data));
  }

 private:
  evp_md_ctx_st* ctx_;
};

// Incremental SHA-1 (BitTorrent v1 piece hashes and info-hashes). Not
// thread-safe.
class Sha1 {
 public:
  Sha1();
  ~Sha1();
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data) { Update(AsBytes(data)); }
  // Returns the digest and resets the hasher for reuse.
  Sha1Digest Final();

  static Sha1Digest Hash(std::span<const uint8_t> data);
  static Sha1Digest Hash(std::string_view data) { return Hash(AsBytes(data)); }

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace shoal::codec

#endif  // SHOAL_CODEC_SHA_H_
