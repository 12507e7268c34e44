// libFuzzer target: the BitTorrent handshake (wire/handshake.h), the first
// decoder any remote byte reaches. Checks: no crash on any input; the prefix
// check and the full parse agree; an accepted handshake encodes back to the
// exact 68 bytes it came from, and parses again to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "wire/handshake.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::wire;  // NOLINT: a fuzz harness
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < kHandshakePrefixLength) return 0;
  const bool prefix_ok = CheckHandshakePrefix(in).ok();
  if (in.size() < kHandshakeLength) return 0;
  auto h = ParseHandshake(in);
  Check(h.ok() == prefix_ok);
  if (!h.ok()) return 0;
  const std::string out = EncodeHandshake(*h);
  Check(out == in.substr(0, kHandshakeLength));
  auto again = ParseHandshake(out);
  Check(again.ok() && again->reserved == h->reserved &&
        again->info_hash == h->info_hash && again->peer_id == h->peer_id);
  return 0;
}
