// libFuzzer target: the peer wire message parser (wire/message.h), the first
// decoder every byte a peer sends after its handshake reaches.
//
// The input is a byte stream as a peer would send it. Checks:
//  - parsing never crashes and never reads past the buffer;
//  - the stream parses the same whole or in pieces: the first byte seeds the
//    sizes of the reads it is cut into (a TCP stream arrives in arbitrary
//    pieces), and both ways give the same messages, or the same error at the
//    same message;
//  - every accepted message other than Unknown encodes back to the bytes it
//    was parsed from (length prefix included): the encoding is canonical.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace {

using namespace shoal::wire;  // NOLINT: a fuzz harness

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Parsed {
  std::vector<std::string> messages;  // each message's encoding
  bool failed = false;
};

std::string Encode(const Message& m) {
  std::string out;
  AppendMessage(m, out);
  return out;
}

// Parses `stream` delivered in reads of the sizes `cuts` gives (cycled; 0
// means everything that is left).
Parsed ParseStream(std::string_view stream, std::string_view cuts) {
  Parsed out;
  std::string buffer;
  size_t pos = 0;
  size_t cut = 0;
  while (pos < stream.size() && !out.failed) {
    size_t n = cuts.empty() ? stream.size()
                            : static_cast<uint8_t>(cuts[cut++ % cuts.size()]);
    if (n == 0) n = stream.size();
    n = std::min(n, stream.size() - pos);
    buffer.append(stream.substr(pos, n));
    pos += n;
    std::string_view view(buffer);
    for (;;) {
      const size_t before = view.size();
      auto m = ParseMessage(view);
      if (!m.ok()) {
        out.failed = true;
        break;
      }
      if (!m->has_value()) {
        Check(view.size() == before);  // a partial message is left alone
        break;
      }
      const std::string_view raw(buffer.data() + (buffer.size() - before),
                                 before - view.size());
      if (!std::holds_alternative<Unknown>(**m)) {
        Check(Encode(**m) == raw);
        // And what we encode, we parse to the same.
        std::string again = Encode(**m);
        std::string_view again_view(again);
        auto m2 = ParseMessage(again_view);
        Check(m2.ok() && m2->has_value() && again_view.empty());
        Check(Encode(**m2) == again);
      }
      out.messages.emplace_back(raw);
    }
    buffer.erase(0, buffer.size() - view.size());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t ncuts = data[0] % 8;
  if (size < 1 + ncuts) return 0;
  std::string_view cuts(reinterpret_cast<const char*>(data + 1), ncuts);
  std::string_view stream(reinterpret_cast<const char*>(data + 1 + ncuts),
                          size - 1 - ncuts);
  const Parsed whole = ParseStream(stream, {});
  const Parsed pieces = ParseStream(stream, cuts);
  Check(whole.failed == pieces.failed);
  Check(whole.messages == pieces.messages);
  return 0;
}
