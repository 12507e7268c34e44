// libFuzzer target: ut_pex (wire/pex.h). The first byte picks the test; the
// rest is its input.
//  - even: ParsePex on an arbitrary payload. An accepted message keeps the
//    limits, and parse -> encode -> parse is the identity.
//  - odd: the bytes script a swarm whose peers come and go, and PexTracker
//    reports it to a simulated receiver. Differential check against the
//    simplest model (a set): every message is within BEP 11's limits, adds
//    only unknown peers, drops only known ones, and once the swarm is still
//    the receiver's view converges to it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wire/pex.h"

namespace {

using namespace shoal::wire;  // NOLINT: a fuzz harness

void Check(bool ok) {
  if (!ok) std::abort();
}

constexpr size_t kMaxPeers = 200;

void Parse(std::string_view in) {
  auto m = ParsePex(in, kMaxPeers);
  if (!m.ok()) return;
  Check(m->added.size() <= kMaxPeers && m->dropped.size() <= kMaxPeers);
  for (const PexPeer& p : m->added) Check(p.port != 0 && !p.ip.empty());
  for (const PexPeer& p : m->dropped) {
    Check(p.port != 0 && !p.ip.empty() && p.flags == 0);
  }
  std::string out = EncodePex(*m);
  auto again = ParsePex(out, kMaxPeers);
  Check(again.ok() && *again == *m);
  Check(EncodePex(*again) == out);
}

// Peer `i` of a universe of 128: IPv4 or IPv6, two ports per address, so that
// more than 50 can change at once.
PexPeer UniversePeer(uint8_t i) {
  PexPeer p;
  const int address = (i & 0x7f) >> 1;
  p.ip = (address & 1) ? "2001:db8::" + std::to_string(address)
                       : "10.0.0." + std::to_string(address);
  p.port = 6881 + (i & 1);
  p.flags = static_cast<uint8_t>(i & 0x1f);
  return p;
}

void Apply(const PexMessage& m,
           std::set<std::pair<std::string, uint16_t>>& view) {
  Check(m.added.size() <= PexTracker::kMaxAdded);
  Check(m.dropped.size() <= PexTracker::kMaxDropped);
  Check(!m.added.empty() || !m.dropped.empty());
  for (const PexPeer& p : m.dropped) Check(view.erase({p.ip, p.port}) == 1);
  for (const PexPeer& p : m.added) Check(view.insert({p.ip, p.port}).second);
  // What the tracker sends, a receiver accepts.
  auto parsed = ParsePex(EncodePex(m));
  Check(parsed.ok() && *parsed == m);
}

void Track(std::string_view script) {
  PexTracker pex;
  std::set<uint8_t> swarm;
  std::set<std::pair<std::string, uint16_t>> view;
  int64_t now = 0;
  static const std::vector<PexPeer>* const kUniverse = [] {
    auto* u = new std::vector<PexPeer>;
    for (int i = 0; i < 128; ++i) u->push_back(UniversePeer(i));
    return u;
  }();
  auto connected = [&] {
    std::vector<PexPeer> out;
    for (uint8_t i : swarm) out.push_back((*kUniverse)[i]);
    return out;
  };
  for (char c : script) {
    const uint8_t b = static_cast<uint8_t>(c);
    if (b & 0x80) {
      // Time passes (0 to 127 s), then the tracker is asked.
      now += int64_t{b & 0x7f} * 1000;
      if (!pex.Due(now)) {
        // Not due: no message, not even the one dropping everybody. (The
        // swarm is built only when due: it is most of the harness's cost.)
        Check(!pex.Update({}, now).has_value());
        continue;
      }
      if (auto m = pex.Update(connected(), now)) {
        Check(!pex.Due(now));
        Apply(*m, view);
      }
    } else if (!swarm.erase(b)) {
      swarm.insert(b);
    }
  }
  // Quiet swarm: at most three more messages (128 peers, 50 a message) bring
  // the receiver up to date.
  for (int i = 0; i < 4; ++i) {
    now += PexTracker::kIntervalMs;
    if (auto m = pex.Update(connected(), now)) Apply(*m, view);
  }
  std::set<std::pair<std::string, uint16_t>> expected;
  for (uint8_t i : swarm) {
    expected.insert({(*kUniverse)[i].ip, (*kUniverse)[i].port});
  }
  Check(view == expected);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    Track(in);
  } else {
    Parse(in);
  }
  return 0;
}
