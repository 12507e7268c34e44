// Connections between two utp::Stacks over a simulated network: a bottleneck
// queue per direction (rate, buffer, propagation delay, loss, reordering),
// driven by an event queue in simulated time.
#include "utp/connection.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "utp/stack.h"

namespace shoal::utp {
namespace {

PeerEndpoint Ep(uint8_t last, uint16_t port) {
  PeerEndpoint e;
  e.address = {10, 0, 0, last};
  e.port = port;
  return e;
}

// One direction of a path.
struct Link {
  double rate = 100e6;    // bytes/s
  double delay = 0.010;   // s, one way
  double buffer = 1e6;    // bytes queued at most
  double loss = 0;        // probability
  double reorder = 0;     // probability that a packet takes 5 ms longer
  double busy_until = 0;  // when the queue drains
};

class Net {
 public:
  explicit Net(uint64_t seed) : rng_(seed) {}

  double now() const { return now_; }
  uint64_t now_us() const { return static_cast<uint64_t>(now_ * 1e6); }

  // Queues `bytes` on `link`; `deliver` runs on arrival. False if dropped.
  bool Send(Link& link, size_t bytes, std::function<void()> deliver) {
    const double start = std::max(now_, link.busy_until);
    if ((start - now_) * link.rate + bytes > link.buffer) return false;
    link.busy_until = start + bytes / link.rate;
    if (Chance(link.loss)) return false;  // lost past the queue
    double arrive = link.busy_until + link.delay;
    if (Chance(link.reorder)) arrive += 0.005;
    At(arrive, std::move(deliver));
    return true;
  }

  void At(double t, std::function<void()> f) {
    events_.push({t, seq_++, std::move(f)});
  }

  // Runs events until `until` or until `done` says so, ticking `tick` every
  // 10 ms of simulated time.
  void Run(double until, const std::function<void()>& tick,
           const std::function<bool()>& done = nullptr) {
    double next_tick = now_;
    while (now_ < until) {
      if (done && done()) return;
      if (!events_.empty() && events_.top().t < next_tick) {
        Event e = events_.top();
        events_.pop();
        now_ = e.t;
        e.f();
      } else {
        now_ = next_tick;
        next_tick += 0.010;
        tick();
      }
    }
  }

  bool Chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  struct Event {
    double t;
    uint64_t seq;
    std::function<void()> f;
    bool operator<(const Event& o) const {
      return t != o.t ? t > o.t : seq > o.seq;
    }
  };
  std::mt19937_64 rng_;
  double now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event> events_;
};

// Two stacks, A (10.0.0.1) and B (10.0.0.2), a link each way.
class Pair {
 public:
  explicit Pair(uint64_t seed = 1, Stack::Options options = {})
      : net(seed),
        a(options, Sender(0), [this] { return net.rng()(); }),
        b(options, Sender(1), [this] { return net.rng()(); }) {}

  // A datagram `from` one side; `drop` filters what leaves (tests of loss).
  Stack::SendTo Sender(int from) {
    return [this, from](const PeerEndpoint& to, std::string_view d) {
      (void)to;
      ++sent[from];
      if (drop && drop(from, d)) return;
      Link& link = from == 0 ? ab : ba;
      Stack* dest = from == 0 ? &b : &a;
      const PeerEndpoint src = from == 0 ? kA : kB;
      net.Send(link, d.size() + 28, [this, dest, src, s = std::string(d)] {
        dest->OnDatagram(src, s, net.now_us());
        dest->FlushAcks(net.now_us());
      });
    };
  }

  void Tick() {
    a.Tick(net.now_us());
    b.Tick(net.now_us());
    if (extra_tick) extra_tick();
  }

  void Run(double seconds, const std::function<bool()>& done = nullptr) {
    net.Run(
        net.now() + seconds, [this] { Tick(); }, done);
  }

  static inline const PeerEndpoint kA = Ep(1, 1000);
  static inline const PeerEndpoint kB = Ep(2, 2000);
  Net net;
  Link ab, ba;
  std::function<bool(int, std::string_view)> drop;
  std::function<void()> extra_tick;
  uint64_t sent[2] = {0, 0};
  Stack a;
  Stack b;
};

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 r(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(r());
  return s;
}

// A writer that keeps `c` fed from `data` and a reader that collects what
// arrives on `d`.
struct Transfer {
  std::shared_ptr<Connection> c;
  std::string data;
  size_t written = 0;
  uint64_t (*clock)(void*) = nullptr;
  Net* net = nullptr;
  bool close_at_end = true;

  void Pump() {
    while (written < data.size()) {
      size_t n =
          c->Write(std::string_view(data).substr(written), net->now_us());
      if (n == 0) return;
      written += n;
    }
    if (close_at_end) c->Close(net->now_us());
  }
};

struct Sink {
  std::shared_ptr<Connection> c;
  std::string got;
  bool eof = false;
  bool paused = false;
  absl::Status closed = absl::UnknownError("open");
  Net* net = nullptr;

  void Drain() {
    if (paused) return;
    char buf[65536];
    while (size_t n = c->Read(buf, sizeof buf, net->now_us()))
      got.append(buf, n);
    if (c->eof()) eof = true;
  }
};

// A sets up a transfer of `data` to B; returns when B has it all or after
// `seconds`.
struct OneWay {
  Transfer tx;
  Sink rx;
  absl::Status a_closed = absl::UnknownError("open");
  bool connected = false;

  void Start(Pair& p, std::string data) {
    rx.net = &p.net;
    tx.net = &p.net;
    tx.data = std::move(data);
    p.b.set_accept([this](std::shared_ptr<Connection> c) {
      rx.c = c;
      c->SetCallbacks(
          {.on_readable = [this] { rx.Drain(); },
           .on_closed = [this](const absl::Status& s) { rx.closed = s; }});
    });
    tx.c = p.a.Connect(Pair::kB, p.net.now_us());
    tx.c->SetCallbacks(
        {.on_connected =
             [this] {
               connected = true;
               tx.Pump();
             },
         .on_writable = [this] { tx.Pump(); },
         .on_closed = [this](const absl::Status& s) { a_closed = s; }});
  }
};

TEST(ConnectionTest, MovesBytesIntactOnACleanLink) {
  Pair p;
  OneWay t;
  const std::string data = Pattern(4 << 20, 7);
  t.Start(p, data);
  p.Run(30, [&] { return t.rx.eof && t.a_closed.ok(); });
  ASSERT_TRUE(t.connected);
  EXPECT_TRUE(t.rx.eof);
  EXPECT_EQ(t.rx.got.size(), data.size());
  EXPECT_TRUE(t.rx.got == data);
  EXPECT_TRUE(t.a_closed.ok()) << t.a_closed;  // its FIN was acknowledged
  EXPECT_EQ(t.tx.c->retransmissions(), 0u);
  // 4 MiB at 100 MB/s with a 20 ms round trip: well under a second once the
  // window has opened.
  EXPECT_LT(p.net.now(), 2.0);
  std::printf("clean: 4 MiB in %.3f s, window %zu, rtt %llu us\n", p.net.now(),
              t.tx.c->send_window(),
              static_cast<unsigned long long>(t.tx.c->rtt_us()));
}

TEST(ConnectionTest, RecoversFromLossAndReordering) {
  for (uint64_t seed : {1, 2, 3}) {
    Pair p(seed);
    p.ab.loss = p.ba.loss = 0.03;
    p.ab.reorder = p.ba.reorder = 0.05;
    OneWay t;
    const std::string data = Pattern(2 << 20, seed);
    t.Start(p, data);
    p.Run(120, [&] { return t.rx.eof; });
    ASSERT_TRUE(t.rx.eof) << "seed " << seed << ": " << t.rx.got.size();
    EXPECT_TRUE(t.rx.got == data) << "seed " << seed;
    EXPECT_GT(t.tx.c->retransmissions(), 0u);
    std::printf("3%% loss, seed %llu: 2 MiB in %.2f s, %llu retransmissions\n",
                static_cast<unsigned long long>(seed), p.net.now(),
                static_cast<unsigned long long>(t.tx.c->retransmissions()));
  }
}

TEST(ConnectionTest, BothDirectionsAtOnce) {
  Pair p;
  const std::string up = Pattern(1 << 20, 1), down = Pattern(1 << 20, 2);
  Sink at_b, at_a;
  at_a.net = at_b.net = &p.net;
  Transfer from_a, from_b;
  from_a.net = from_b.net = &p.net;
  from_a.data = up;
  from_b.data = down;
  from_a.close_at_end = from_b.close_at_end = false;
  p.b.set_accept([&](std::shared_ptr<Connection> c) {
    at_b.c = from_b.c = c;
    c->SetCallbacks({.on_readable = [&] { at_b.Drain(); },
                     .on_writable = [&] { from_b.Pump(); }});
    from_b.Pump();
  });
  auto c = p.a.Connect(Pair::kB, 0);
  at_a.c = from_a.c = c;
  c->SetCallbacks({.on_connected = [&] { from_a.Pump(); },
                   .on_readable = [&] { at_a.Drain(); },
                   .on_writable = [&] { from_a.Pump(); }});
  p.Run(30, [&] {
    return at_a.got.size() == down.size() && at_b.got.size() == up.size();
  });
  EXPECT_TRUE(at_b.got == up);
  EXPECT_TRUE(at_a.got == down);
}

TEST(ConnectionTest, ASlowReaderShutsTheWindowAndTheSenderWaits) {
  Stack::Options o;
  o.connection.receive_buffer = 64 << 10;
  Pair p(1, o);
  OneWay t;
  const std::string data = Pattern(1 << 20, 3);
  t.rx.paused = true;
  t.Start(p, data);
  p.Run(5);
  // The receiver holds at most its buffer, and the probes of a shut window
  // (backing off from 0.5 s: three in 5 s).
  ASSERT_NE(t.rx.c, nullptr);
  EXPECT_LE(t.rx.c->readable(), (64u << 10) + 4 * 1400);
  EXPECT_GT(t.rx.c->readable(), 32u << 10);
  EXPECT_EQ(t.rx.c->state(), Connection::State::kConnected);
  t.rx.paused = false;
  t.rx.Drain();
  p.Run(60, [&] { return t.rx.eof; });
  EXPECT_TRUE(t.rx.got == data);
}

TEST(ConnectionTest, ALostSynIsSentAgain) {
  Pair p;
  int syns = 0;
  p.drop = [&](int from, std::string_view d) {
    return from == 0 && (static_cast<uint8_t>(d[0]) >> 4) == 4 && syns++ == 0;
  };
  OneWay t;
  t.Start(p, "hello");
  p.Run(10, [&] { return t.rx.eof; });
  EXPECT_TRUE(t.connected);
  EXPECT_EQ(t.rx.got, "hello");
  EXPECT_EQ(syns, 2);
}

TEST(ConnectionTest, ALostAckOfTheSynIsSentAgain) {
  Pair p;
  int acks = 0;
  p.drop = [&](int from, std::string_view d) {
    return from == 1 && (static_cast<uint8_t>(d[0]) >> 4) == 2 && acks++ == 0;
  };
  OneWay t;
  t.Start(p, "hello");
  p.Run(10, [&] { return t.rx.eof; });
  EXPECT_TRUE(t.connected);
  EXPECT_EQ(t.rx.got, "hello");
}

// The data before the FIN is acked (which stops the timer), the FIN is lost:
// it goes again, and the close completes instead of waiting out the idle
// limit.
TEST(ConnectionTest, ALostFinIsSentAgain) {
  Pair p;
  int fins = 0;
  p.drop = [&](int from, std::string_view d) {
    return from == 0 && (static_cast<uint8_t>(d[0]) >> 4) == 1 && fins++ == 0;
  };
  OneWay t;
  t.Start(p, Pattern(64 << 10, 3));
  p.Run(10, [&] { return t.rx.eof && t.a_closed.ok(); });
  EXPECT_TRUE(t.rx.eof);
  EXPECT_EQ(t.rx.got.size(), 64u << 10);
  EXPECT_TRUE(t.a_closed.ok()) << t.a_closed;
  EXPECT_EQ(fins, 2);
  EXPECT_LT(p.net.now(), 3.0);
}

TEST(ConnectionTest, ARefusedConnectIsReset) {
  Pair p;  // B accepts nothing
  absl::Status closed = absl::UnknownError("open");
  auto c = p.a.Connect(Pair::kB, 0);
  c->SetCallbacks({.on_closed = [&](const absl::Status& s) { closed = s; }});
  p.Run(5, [&] {
    return !closed.ok() && closed.code() != absl::StatusCode::kUnknown;
  });
  EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable) << closed;
  EXPECT_EQ(p.b.stats().refused, 1u);
  p.Run(0.1);
  EXPECT_EQ(p.a.size(), 0u);  // forgotten
}

TEST(ConnectionTest, ConnectingToSilenceTimesOut) {
  Pair p;
  p.drop = [](int from, std::string_view) { return from == 0; };
  absl::Status closed = absl::UnknownError("open");
  auto c = p.a.Connect(Pair::kB, 0);
  c->SetCallbacks({.on_closed = [&](const absl::Status& s) { closed = s; }});
  p.Run(30, [&] { return closed.code() != absl::StatusCode::kUnknown; });
  EXPECT_EQ(closed.code(), absl::StatusCode::kDeadlineExceeded) << closed;
  // SYNs at 0, 1, 3 and 7 s, given up at 15 s.
  EXPECT_EQ(p.sent[0], 4u);
  EXPECT_NEAR(p.net.now(), 15, 0.1);
}

TEST(ConnectionTest, APeerThatVanishesIsDetected) {
  Pair p;
  OneWay t;
  t.tx.close_at_end = false;
  t.Start(p, Pattern(64 << 10, 1));
  p.Run(2);
  ASSERT_TRUE(t.connected);
  p.drop = [](int, std::string_view) { return true; };  // cable cut
  t.tx.data += Pattern(64 << 10, 2);
  t.tx.Pump();
  p.Run(300, [&] { return t.a_closed.code() != absl::StatusCode::kUnknown; });
  EXPECT_EQ(t.a_closed.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(ConnectionTest, StraysAndGarbageAreAnsweredOrIgnored) {
  Pair p;
  Header h;
  h.type = PacketType::kData;
  h.connection_id = 99;
  std::string d;
  AppendPacket(h, {}, "x", d);
  p.b.OnDatagram(Pair::kA, d, 0);  // no such connection
  EXPECT_EQ(p.b.stats().resets_sent, 1u);
  p.b.OnDatagram(Pair::kA, std::string(20, '\x01'), 0);  // bad extension
  std::string bad = d;
  bad[1] = 1;  // a selective ack past the end
  p.b.OnDatagram(Pair::kA, bad, 0);
  EXPECT_EQ(p.b.stats().malformed, 2u);
}

// LEDBAT: a µTP transfer and a TCP Reno flow share a 1 MB/s bottleneck with
// 200 ms of buffer. Alone, µTP fills the link and keeps the queue near its
// 100 ms target; once TCP starts, µTP yields: TCP gets most of the link.
struct RenoFlow {
  // A simplified TCP Reno: slow start, +1 packet per window, halving at
  // most once per round trip when a packet is lost (learned one round trip
  // later, as three duplicate acks would tell it).
  Net* net;
  Link* forward;
  double rtt_floor;
  double cwnd = 2;
  double ssthresh = 1e9;
  int in_flight = 0;
  double last_cut = -1;
  uint64_t delivered = 0;
  static constexpr size_t kPacket = 1500;

  void Pump() {
    while (in_flight < static_cast<int>(cwnd)) {
      ++in_flight;
      const bool queued = net->Send(*forward, kPacket, [this] {
        delivered += kPacket;
        net->At(net->now() + rtt_floor / 2, [this] { OnAck(); });
      });
      if (!queued) {
        net->At(net->now() + rtt_floor, [this] { OnLoss(); });
      }
    }
  }
  void OnAck() {
    --in_flight;
    cwnd += cwnd < ssthresh ? 1 : 1 / cwnd;
    Pump();
  }
  void OnLoss() {
    --in_flight;
    if (net->now() - last_cut > rtt_floor * 2) {
      ssthresh = cwnd = std::max(2.0, cwnd / 2);
      last_cut = net->now();
    }
    Pump();
  }
};

TEST(ConnectionTest, LedbatYieldsToTcpOnASharedLink) {
  Pair p;
  p.ab.rate = 1e6;
  p.ab.delay = p.ba.delay = 0.020;
  p.ab.buffer = 200e3;  // 200 ms at the link's rate
  OneWay t;
  t.tx.close_at_end = false;
  t.Start(p, Pattern(64 << 20, 1));
  // µTP alone for 10 s.
  p.Run(5);
  const uint64_t utp_at5 = t.rx.got.size();
  double max_queue = 0;
  p.extra_tick = [&] {
    max_queue = std::max(max_queue, p.ab.busy_until - p.net.now());
  };
  p.Run(5);
  const double utp_alone = (t.rx.got.size() - utp_at5) / 5.0;
  std::printf("utp alone: %.0f KB/s of 1000, queue at most %.0f ms\n",
              utp_alone / 1e3, max_queue * 1e3);
  EXPECT_GT(utp_alone, 0.8e6);
  EXPECT_LT(max_queue, 0.150);
  // Then TCP joins; measure from 5 s after it started, for 20 s.
  RenoFlow tcp{&p.net, &p.ab, 0.040};
  tcp.Pump();
  p.extra_tick = nullptr;
  p.Run(5);
  const uint64_t tcp0 = tcp.delivered, utp0 = t.rx.got.size();
  p.Run(20);
  const double tcp_rate = (tcp.delivered - tcp0) / 20.0;
  const double utp_rate = (t.rx.got.size() - utp0) / 20.0;
  std::printf("shared: tcp %.0f KB/s, utp %.0f KB/s (tcp's share %.2f)\n",
              tcp_rate / 1e3, utp_rate / 1e3, tcp_rate / 1e6);
  EXPECT_GE(tcp_rate, 0.7e6);
}

}  // namespace
}  // namespace shoal::utp
