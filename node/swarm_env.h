// What the swarm engine (node/swarm.h) takes from outside, so that nothing in
// it touches sockets, timers, threads or a random device: a PeerLink per
// connection (the transport), and a SwarmEnv (time, randomness, work off the
// swarm's thread). The node gives it TCP connections (PeerConnection) and an
// Asio event loop (AsioSwarmEnv, node/asio_swarm_env.h); a unit test or a
// simulation gives it fakes and drives time itself.
//
// Every call in either direction happens on the swarm's thread.
#ifndef SHOAL_NODE_SWARM_ENV_H_
#define SHOAL_NODE_SWARM_ENV_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/peer_endpoint.h"
#include "node/rate_limit.h"
#include "wire/message.h"

namespace shoal::node {

// One connection to a peer, after the handshake: a stream of peer wire
// messages each way. Designed so that TCP, µTP and encrypted streams fit
// behind it: the swarm sees messages and byte counts, never a socket.
class PeerLink {
 public:
  // Receives what happens on the link.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A message arrived. It may view the link's buffer: use it before
    // returning.
    virtual void OnMessage(PeerLink& link, const wire::Message& message) = 0;
    // The link closed (by either side); `why` says why. No call follows.
    virtual void OnClose(PeerLink& link, const absl::Status& why) = 0;
    // The send queue drained below the low-water mark.
    virtual void OnWritable(PeerLink&) {}
  };

  virtual ~PeerLink() = default;

  // Queued bytes above which the swarm stops serving a peer's requests (and
  // a link may stop reading), and below which OnWritable comes.
  static constexpr size_t kHighWater = 4 << 20;
  static constexpr size_t kLowWater = 1 << 20;

  // Starts delivering messages to `handler`. Called once.
  virtual void Start(Handler* handler) = 0;
  // Queues bytes (one or more encoded messages) to send.
  virtual void Send(std::string bytes) = 0;
  virtual void Send(const wire::Message& message) = 0;
  // Queues `head`, then `length` bytes of `*data` from `offset`, sent from
  // where they are: a block of a piece the piece cache holds goes to the
  // socket without a copy (the queue keeps the piece alive until it is
  // written). This default copies.
  virtual void SendShared(std::string head,
                          std::shared_ptr<const std::string> data,
                          size_t offset, size_t length) {
    head.append(*data, offset, length);
    Send(std::move(head));
  }
  // Reads obey every bucket of `down`, writes every bucket of `up`. Called
  // before Start().
  virtual void SetRateLimits(std::vector<std::shared_ptr<RateLimit>> down,
                             std::vector<std::shared_ptr<RateLimit>> up) = 0;
  // Closes the link; the handler's OnClose follows (once).
  virtual void Close(const absl::Status& why) = 0;

  // Identifies the link to its swarm; unique within the node.
  virtual uint64_t key() const = 0;
  virtual const PeerEndpoint& remote() const = 0;
  // What the link runs over: "tcp", "utp" (PEX tells other peers so) or
  // "http" (a web seed).
  virtual std::string_view transport() const { return "tcp"; }
  // Whether the stream is encrypted (MSE with RC4).
  virtual bool encrypted() const { return false; }
  // What a ban names: a peer's IP address; a web seed's URL.
  virtual std::string ban_key() const { return remote().IpString(); }
  // Bytes queued and not yet sent.
  virtual size_t queued_bytes() const = 0;
  // Keeps at most about `bytes` unsent below the link (a TCP socket's send
  // buffer: TCP_NOTSENT_LOWAT), so that queued_bytes() counts what really
  // waits to be sent rather than what the kernel took. A link without such a
  // buffer ignores it.
  virtual void LimitUnsent(size_t /*bytes*/) {}
  // The transport's smoothed round-trip time in microseconds (TCP_INFO,
  // µTP's own estimate); 0 if unknown.
  virtual uint64_t rtt_us() const { return 0; }
  // Totals, every byte (messages and their framing).
  virtual uint64_t bytes_received() const = 0;
  virtual uint64_t bytes_sent() const = 0;
};

// A repeating call; it stops when this is destroyed.
class Ticker {
 public:
  virtual ~Ticker() = default;
};

// Time, randomness and work off the swarm's thread.
class SwarmEnv {
 public:
  virtual ~SwarmEnv() = default;

  // A uniformly random 64-bit value.
  virtual uint64_t Random() = 0;
  // Runs `work` where it may block (hashing, disk), then `done` on the
  // swarm's thread. Neither may assume the swarm still exists: they are
  // given what they need, and `done` checks.
  virtual void Offload(std::function<void()> work,
                       std::function<void()> done) = 0;
  // Runs `fn` on the swarm's thread after the current call has returned.
  virtual void Defer(std::function<void()> fn) = 0;
  // Calls `tick` once a second until the returned handle is destroyed. The
  // swarm's clock: every timeout it has is a number of ticks.
  virtual std::unique_ptr<Ticker> EverySecond(std::function<void()> tick) = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SWARM_ENV_H_
