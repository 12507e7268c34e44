// libFuzzer target: µTP (utp/). Two stacks, A and B, with a connection from A
// to B; the input scripts what happens: datagrams delivered, lost or
// duplicated in either direction, forged datagrams (arbitrary bytes, or a
// header aimed at the live connection) injected into B, time passing, A
// writing, B reading. Checks: nothing crashes, the books stay consistent
// (bytes in flight never exceed what is unacknowledged), and, while nothing
// was forged, what B reads is a prefix of what A wrote.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "utp/stack.h"

namespace {

using namespace shoal::utp;  // NOLINT: a fuzz harness

void Check(bool ok) {
  if (!ok) std::abort();
}

shoal::PeerEndpoint Ep(uint8_t last) {
  shoal::PeerEndpoint e;
  e.address = {10, 0, 0, last};
  e.port = 6881;
  return e;
}

struct Harness {
  std::deque<std::string> to_b, to_a;
  uint64_t now = 1'000'000;
  uint64_t random = 1;
  Stack::Options options;
  std::unique_ptr<Stack> a, b;
  std::shared_ptr<Connection> ca, cb;
  std::string written, read;
  bool forged = false;

  Harness() {
    options.connection.receive_buffer = 64 << 10;
    options.connection.send_buffer = 64 << 10;
    auto rng = [this] { return random = random * 6364136223846793005u + 1; };
    a = std::make_unique<Stack>(
        options,
        [this](const auto&, std::string_view d) { to_b.emplace_back(d); }, rng);
    b = std::make_unique<Stack>(
        options,
        [this](const auto&, std::string_view d) { to_a.emplace_back(d); }, rng);
    b->set_accept([this](std::shared_ptr<Connection> c) { cb = std::move(c); });
    ca = a->Connect(Ep(2), now);
  }

  void Deliver(std::deque<std::string>& q, Stack& to, uint8_t from, int how) {
    if (q.empty()) return;
    std::string d = std::move(q.front());
    q.pop_front();
    if (how == 1) return;                             // lost
    if (how == 2 && q.size() < 4096) q.push_back(d);  // duplicated, later
    to.OnDatagram(Ep(from), d, now);
    to.FlushAcks(now);
  }

  void Read() {
    if (!cb) return;
    char buf[4096];
    while (size_t n = cb->Read(buf, sizeof buf, now)) read.append(buf, n);
  }

  void Checks() const {
    for (const auto& c : {ca, cb}) {
      if (c) Check(c->bytes_in_flight() <= c->send_queued() + 1);
    }
    if (!forged)
      Check(std::string_view(written).substr(0, read.size()) == read);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness h;
  size_t i = 0;
  auto next = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
  while (i < size) {
    const uint8_t op = next();
    switch (op & 7) {
      case 0:
      case 1:
        h.Deliver(h.to_b, *h.b, 1, (op >> 3) & 3);
        break;
      case 2:
        h.Deliver(h.to_a, *h.a, 2, (op >> 3) & 3);
        break;
      case 3: {  // forged bytes into B
        const size_t len = next();
        std::string d;
        for (size_t k = 0; k < len; ++k) d.push_back(static_cast<char>(next()));
        if ((op & 8) && d.size() >= kHeaderSize && h.cb) {
          d[0] = static_cast<char>((d[0] & 0xf0) | kVersion);
          d[2] = static_cast<char>(h.cb->recv_id() >> 8);
          d[3] = static_cast<char>(h.cb->recv_id() & 0xff);
        }
        h.forged = true;
        if (LooksLikeUtp(d)) h.b->OnDatagram(Ep(1), d, h.now);
        h.b->FlushAcks(h.now);
        break;
      }
      case 4:  // time passes: 0-310 ms
        h.now += static_cast<uint64_t>(op >> 3) * 10'000;
        h.a->Tick(h.now);
        h.b->Tick(h.now);
        break;
      case 5: {  // A writes
        const size_t len = static_cast<size_t>(op >> 3) * 700;
        std::string chunk;
        for (size_t k = 0; k < len; ++k)
          chunk.push_back(static_cast<char>(h.written.size() + k));
        const size_t n = h.ca->Write(chunk, h.now);
        h.written.append(chunk, 0, n);
        break;
      }
      case 6:
        h.Read();
        break;
      case 7:
        if (op & 8) {
          h.ca->Close(h.now);
        } else if (h.cb) {
          h.cb->Close(h.now);
        }
        break;
    }
    h.Checks();
  }
  return 0;
}
