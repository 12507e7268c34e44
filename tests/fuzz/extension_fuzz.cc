// libFuzzer target: the BEP 10 extension handshake and BEP 9 ut_metadata
// messages (wire/extension.h) on arbitrary payloads. The first byte picks the
// parser; the rest is its input. Accepted messages must keep the parsers'
// promises and survive parse -> encode -> parse unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "wire/extension.h"

namespace {

using namespace shoal::wire;  // NOLINT: a fuzz harness

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Same(const ExtensionHandshake& a, const ExtensionHandshake& b) {
  return a.m == b.m && a.client == b.client && a.listen_port == b.listen_port &&
         a.reqq == b.reqq && a.yourip == b.yourip &&
         a.metadata_size == b.metadata_size && a.upload_only == b.upload_only;
}

void Handshake(std::string_view in) {
  auto h = ParseExtensionHandshake(in);
  if (!h.ok()) return;
  Check(h->client.size() <= 256);
  Check(h->yourip.empty() || h->yourip.size() == 4 || h->yourip.size() == 16);
  if (h->listen_port) Check(*h->listen_port != 0);
  if (h->reqq) Check(*h->reqq > 0);
  if (h->metadata_size) Check(*h->metadata_size > 0);
  for (const auto& [name, id] : h->m) Check(h->IdOf(name) == id);
  std::string out = EncodeExtensionHandshake(*h);
  auto again = ParseExtensionHandshake(out);
  Check(again.ok());
  Check(Same(*h, *again));
  Check(EncodeExtensionHandshake(*again) == out);
}

void Metadata(std::string_view in) {
  auto m = ParseMetadataMessage(in);
  if (!m.ok()) return;
  Check(m->piece <= (uint32_t{1} << 20));
  if (m->type == MetadataMessageType::kData) {
    Check(m->total_size && *m->total_size > 0);
    Check(m->data.size() <= kMetadataPieceSize);
    // The data views the tail of the payload.
    Check(m->data.data() + m->data.size() == in.data() + in.size());
  } else {
    Check(m->data.empty() && !m->total_size);
  }
  std::string out = EncodeMetadataMessage(*m);
  auto again = ParseMetadataMessage(out);
  Check(again.ok());
  Check(again->type == m->type && again->piece == m->piece &&
        again->total_size == m->total_size && again->data == m->data);
  Check(EncodeMetadataMessage(*again) == out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    Metadata(in);
  } else {
    Handshake(in);
  }
  return 0;
}
