// The µTP endpoint of one UDP socket: it matches each datagram to its
// connection by sender and connection ID, accepts SYNs, answers strays with
// RESET, opens outgoing connections, batches ACKs and drives the timers.
// Sans-I/O like Connection: the owner reads the socket, passes the time, and
// gives a function that sends a datagram.
//
//   utp::Stack stack(options, [&](const PeerEndpoint& to, std::string_view d)
//                    { socket.send_to(d, to); }, random);
//   stack.set_accept([](std::shared_ptr<utp::Connection> c) { ... });
//   auto c = stack.Connect(peer, now_us);      // on_connected follows
//   // for each datagram read:
//   stack.OnDatagram(from, datagram, now_us);
//   stack.FlushAcks(now_us);                     // after a batch of reads
//   stack.Tick(now_us);                          // every 50 ms or so
#ifndef SHOAL_UTP_STACK_H_
#define SHOAL_UTP_STACK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "base/peer_endpoint.h"
#include "utp/connection.h"

namespace shoal::utp {

class Stack {
 public:
  struct Options {
    ConnectionOptions connection;
    // Connections at once; SYNs past it are answered with RESET.
    size_t max_connections = 2000;
  };
  struct Stats {
    uint64_t datagrams_in = 0;
    uint64_t malformed = 0;
    uint64_t resets_sent = 0;
    uint64_t refused = 0;  // SYNs refused (no acceptor, or full)
  };

  using SendTo =
      std::function<void(const PeerEndpoint& to, std::string_view datagram)>;
  using AcceptFn = std::function<void(std::shared_ptr<Connection>)>;

  Stack(Options options, SendTo send_to, std::function<uint64_t()> random);
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Incoming connections go to `accept` (set its callbacks there); without
  // one, SYNs are refused.
  void set_accept(AcceptFn accept) { accept_ = std::move(accept); }

  // Opens a connection; its SYN leaves now.
  std::shared_ptr<Connection> Connect(const PeerEndpoint& to, uint64_t now_us);
  // A datagram from the socket. REQUIRES: LooksLikeUtp(datagram).
  void OnDatagram(const PeerEndpoint& from, std::string_view datagram,
                  uint64_t now_us);
  // Sends the ACKs the last datagrams earned, one per connection.
  void FlushAcks(uint64_t now_us);
  // Timers; forgets closed connections.
  void Tick(uint64_t now_us);

  size_t size() const { return connections_.size(); }
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [key, c] : connections_) fn(*c);
  }
  const Stats& stats() const { return stats_; }

 private:
  using Key = std::pair<PeerEndpoint, uint16_t>;  // sender, our receive ID

  Connection::Send SendFunction(const PeerEndpoint& to);
  void Reset(const PeerEndpoint& to, const Packet& p);

  const Options options_;
  const SendTo send_to_;
  const std::function<uint64_t()> random_;
  AcceptFn accept_;
  std::map<Key, std::shared_ptr<Connection>> connections_;
  std::vector<std::weak_ptr<Connection>> acks_;  // owe an ACK this batch
  Stats stats_;
};

}  // namespace shoal::utp

#endif  // SHOAL_UTP_STACK_H_
