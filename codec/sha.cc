#include "codec/sha.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace shoal::codec {
namespace {

// OpenSSL only fails here on allocation failure, which we treat like operator
// new does.
void Check(int ok) {
  if (ok != 1) std::abort();
}

// Explicitly fetched once: OpenSSL 3 otherwise looks the algorithm up on every
// init, which costs more than hashing the 64-byte inner nodes of a merkle tree.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

const EVP_MD* Sha1Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  return md;
}

EVP_MD_CTX* NewCtx(const EVP_MD* md) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || md == nullptr) std::abort();
  Check(EVP_DigestInit_ex2(ctx, md, nullptr));
  return ctx;
}

template <size_t N>
std::array<uint8_t, N> FinalAndReset(EVP_MD_CTX* ctx) {
  std::array<uint8_t, N> out;
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx, out.data(), &len));
  Check(EVP_DigestInit_ex2(ctx, nullptr, nullptr));
  return out;
}

}  // namespace

Sha256::Sha256() : ctx_(NewCtx(Sha256Md())) {}
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(std::span<const uint8_t> data) {
  Check(EVP_DigestUpdate(ctx_, data.data(), data.size()));
}

Sha256Digest Sha256::Final() { return FinalAndReset<32>(ctx_); }

Sha256Digest Sha256::Hash(std::span<const uint8_t> data) {
  thread_local Sha256 hasher;
  hasher.Update(data);
  return hasher.Final();
}

Sha1::Sha1() : ctx_(NewCtx(Sha1Md())) {}
Sha1::~Sha1() { EVP_MD_CTX_free(ctx_); }

void Sha1::Update(std::span<const uint8_t> data) {
  Check(EVP_DigestUpdate(ctx_, data.data(), data.size()));
}

Sha1Digest Sha1::Final() { return FinalAndReset<20>(ctx_); }

Sha1Digest Sha1::Hash(std::span<const uint8_t> data) {
  thread_local Sha1 hasher;
  hasher.Update(data);
  return hasher.Final();
}

}  // namespace shoal::codec
