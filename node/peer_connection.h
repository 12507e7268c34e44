// One connection to a peer, after the handshake: frames in, frames out. The
// swarm's PeerLink over TCP (PeerConnection) or µTP (UtpPeerConnection).
//
// Runs on the network thread. Reading: bytes are parsed into wire messages and
// handed to the handler; reading pauses while more than a limit of outgoing
// bytes is queued, so a peer that asks faster than it reads cannot make us
// buffer without bound. Writing: messages are queued and written in order.
#ifndef SHOAL_NODE_PEER_CONNECTION_H_
#define SHOAL_NODE_PEER_CONNECTION_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "base/peer_endpoint.h"
#include "node/asio.h"
#include "node/rate_limit.h"
#include "node/swarm_env.h"
#include "node/utp_socket.h"
#include "wire/message.h"
#include "wire/mse.h"

namespace shoal::node {

// `Stream` is tcp::socket or UtpSocket.
template <typename Stream>
class BasicPeerConnection final
    : public PeerLink,
      public std::enable_shared_from_this<BasicPeerConnection<Stream>> {
 public:
  // `key` identifies the connection to its swarm. `pending` holds bytes already
  // read after the handshake.
  BasicPeerConnection(Stream socket, uint64_t key, std::string pending);
  ~BasicPeerConnection();
  BasicPeerConnection(const BasicPeerConnection&) = delete;
  BasicPeerConnection& operator=(const BasicPeerConnection&) = delete;

  // Starts reading. REQUIRES: called once, on the network thread.
  void Start(Handler* handler) override;

  // Queues bytes (one or more encoded messages) to send.
  void Send(std::string bytes) override;
  void Send(const wire::Message& message) override;
  // Without a copy, unless the connection encrypts (RC4 works in place).
  void SendShared(std::string head, std::shared_ptr<const std::string> data,
                  size_t offset, size_t length) override;

  // Limits reads by `down` and writes by `up` (each bucket must allow a byte
  // before it moves). Call before Start().
  void SetRateLimits(std::vector<std::shared_ptr<RateLimit>> down,
                     std::vector<std::shared_ptr<RateLimit>> up) override {
    down_ = std::move(down);
    up_ = std::move(up);
  }

  // An MSE connection that chose RC4: what is read is decrypted, what is sent
  // encrypted. Call before Start() (`pending` is plaintext already).
  void SetCiphers(wire::MseCiphers ciphers) { ciphers_ = std::move(ciphers); }
  // Closes the connection; the handler's OnClose follows (once).
  void Close(const absl::Status& why) override;

  uint64_t key() const override { return key_; }
  std::string_view transport() const override {
    return std::is_same_v<Stream, UtpSocket> ? "utp" : "tcp";
  }
  bool encrypted() const override { return ciphers_.encrypt != nullptr; }
  const PeerEndpoint& remote() const override { return remote_; }
  size_t queued_bytes() const override { return queued_bytes_; }
  void LimitUnsent(size_t bytes) override;
  bool closed() const { return closed_; }
  uint64_t rtt_us() const override;
  uint64_t bytes_received() const override { return bytes_received_; }
  uint64_t bytes_sent() const override { return bytes_sent_; }

 private:
  void ReadMore();
  // Bytes the next read may take: 0 while paused or rate-limited.
  size_t ReadQuota();
  // TCP: reads until the socket would block, then waits for it.
  void ReadReady();
  void ReadFailed(boost::system::error_code ec);
  // Bytes read: counted, decrypted, parsed.
  void Received(char* data, size_t n);
  // Hands every whole message in in_ + `data` to the handler; keeps the rest.
  void Consume(const char* data, size_t n);
  void WriteMore();
  // Bytes the limits let through now; 0 arms `timer` to call `retry`.
  size_t Quota(std::vector<std::shared_ptr<RateLimit>>& limits,
               asio::steady_timer& timer, bool& waiting,
               void (BasicPeerConnection::*retry)());

  Stream socket_;
  const uint64_t key_;
  PeerEndpoint remote_;
  Handler* handler_ = nullptr;
  // Received, not yet parsed: at most one partial message (the bytes given
  // to the constructor until Start).
  std::string in_;
  std::unique_ptr<char[]> utp_buffer_;  // µTP only
  bool reading_ = false;  // a read or a wait for one is in progress
  bool paused_ = false;
  // What waits to be written: bytes of its own, or a range of shared ones.
  struct Segment {
    std::string own;
    std::shared_ptr<const std::string> shared;
    size_t offset = 0;
    size_t length = 0;
    const char* data() const {
      return shared ? shared->data() + offset : own.data();
    }
    size_t size() const { return shared ? length : own.size(); }
  };
  std::deque<Segment> out_;
  wire::MseCiphers ciphers_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  // Bytes of out_.front() already written (a rate-limited partial write).
  size_t front_written_ = 0;
  std::vector<std::shared_ptr<RateLimit>> down_;
  std::vector<std::shared_ptr<RateLimit>> up_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
};

using PeerConnection = BasicPeerConnection<tcp::socket>;
using UtpPeerConnection = BasicPeerConnection<UtpSocket>;
extern template class BasicPeerConnection<tcp::socket>;
extern template class BasicPeerConnection<UtpSocket>;

}  // namespace shoal::node

#endif  // SHOAL_NODE_PEER_CONNECTION_H_
