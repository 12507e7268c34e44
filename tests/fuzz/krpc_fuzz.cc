// libFuzzer target: KRPC decoding (DecodeKrpc) on arbitrary datagrams. Besides
// "never crash", an accepted message must satisfy what the decoder promises
// (address families, 20-byte IDs) and survive decode -> encode -> decode
// unchanged, with the second encoding byte-identical to the first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dht/krpc.h"

namespace {

using namespace shoal::dht;  // NOLINT: a fuzz harness

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Same(const KrpcMessage& a, const KrpcMessage& b) {
  return a.type == b.type && a.transaction_id == b.transaction_id &&
         a.cluster == b.cluster && a.ip == b.ip && a.id == b.id &&
         a.method == b.method && a.method_name == b.method_name &&
         a.target == b.target && a.info_hash == b.info_hash &&
         a.port == b.port && a.implied_port == b.implied_port &&
         a.want_v4 == b.want_v4 && a.want_v6 == b.want_v6 &&
         a.token == b.token && a.nodes == b.nodes && a.nodes6 == b.nodes6 &&
         a.values == b.values && a.error_code == b.error_code &&
         a.error_message == b.error_message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = DecodeKrpc(in);
  if (!m.ok()) return 0;
  if (m->ip) Check(m->ip->valid() && !m->ip->ToString().empty());
  for (const NodeInfo& n : m->nodes) Check(n.endpoint.is_v4());
  for (const NodeInfo& n : m->nodes6) Check(n.endpoint.is_v6());
  for (const Endpoint& e : m->values) Check(e.valid());
  if (m->type == KrpcType::kQuery && m->method == KrpcMethod::kAnnouncePeer) {
    Check(m->implied_port || m->port != 0);
  }

  std::string out = EncodeKrpc(*m);
  auto again = DecodeKrpc(out);
  Check(again.ok());
  Check(Same(*m, *again));
  Check(EncodeKrpc(*again) == out);
  return 0;
}
