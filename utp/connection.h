// One µTP connection (BEP 29), sans-I/O: packets in through OnPacket(),
// datagrams out through the send function, time passed in by the caller. It
// keeps the send window (LEDBAT, retransmission on timeout, on three
// duplicate acks and on selective acks), the receive window (out-of-order
// packets held and selectively acked), and a byte stream each way.
//
// The owner (normally utp::Stack, which demultiplexes a UDP socket) feeds it
// packets and calls Tick() every few tens of milliseconds and FlushAck()
// after each batch of packets. The user reads and writes like a
// non-blocking socket:
//
//   conn->SetCallbacks({.on_readable = ..., .on_writable = ..., ...});
//   size_t n = conn->Write(bytes, now_us);   // what the send buffer took
//   size_t got = conn->Read(buf, size, now_us);
//   if (got == 0 && conn->eof()) ...          // the peer closed
//   conn->Close(now_us);                      // FIN after what is queued
//
// Callbacks run at the end of the call that caused them (never in the middle
// of updating state), so they may call back into the connection.
#ifndef SHOAL_UTP_CONNECTION_H_
#define SHOAL_UTP_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/peer_endpoint.h"
#include "utp/ledbat.h"
#include "utp/packet.h"

namespace shoal::utp {

struct ConnectionOptions {
  // The largest datagram we send (header included). 1,400 bytes fits a
  // 1,500-byte Ethernet MTU under IPv4 or IPv6 with room for a tunnel or
  // PPPoE header.
  size_t packet_size = 1400;
  // Bytes received and not yet read, in order or not (the advertised
  // window).
  size_t receive_buffer = 1 << 20;
  // Bytes written and not yet acknowledged that Write() accepts.
  size_t send_buffer = 1 << 20;
  // Retransmission timeouts in a row that end a connection (a connect gives
  // up after connect_retries).
  int max_timeouts = 7;
  int connect_retries = 3;
  // A connect not answered within this gives up however many SYNs went (0:
  // only connect_retries counts). libtorrent gives µTP 3 s before TCP.
  uint64_t connect_timeout_us = 0;
};

class Connection {
 public:
  enum class State : uint8_t { kSynSent, kConnected, kClosing, kClosed };

  struct Callbacks {
    std::function<void()> on_connected = {};
    // Data, or the end of the stream, can be read.
    std::function<void()> on_readable = {};
    // The send buffer has room again after a Write() took less than asked.
    std::function<void()> on_writable = {};
    // Closed: OK after an orderly close, else why. Called once.
    std::function<void(const absl::Status&)> on_closed = {};
  };

  using Send = std::function<void(std::string_view datagram)>;

  // An outgoing connection: sends its SYN at once. Our packets arrive with
  // `recv_id`; we send with recv_id + 1.
  static std::unique_ptr<Connection> Connect(const PeerEndpoint& remote,
                                             uint16_t recv_id, uint16_t seq_nr,
                                             const ConnectionOptions& options,
                                             Send send, uint64_t now_us);
  // An incoming connection from its SYN: acknowledges it at once. Our
  // initial sequence number is `seq_nr` (random).
  static std::unique_ptr<Connection> Accept(const PeerEndpoint& remote,
                                            const Packet& syn, uint16_t seq_nr,
                                            const ConnectionOptions& options,
                                            Send send, uint64_t now_us);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void SetCallbacks(Callbacks callbacks);

  // A packet addressed to this connection (the stack matched its ID).
  void OnPacket(const Packet& packet, uint64_t now_us);
  // Retransmission and keep-alive timers.
  void Tick(uint64_t now_us);
  // Sends a bare ACK if one is owed (after a batch of packets).
  void FlushAck(uint64_t now_us);

  // Queues up to the send buffer's room; returns the bytes taken (0 when
  // full: on_writable follows, or when not connected or closing).
  size_t Write(std::string_view data, uint64_t now_us);
  // Reads up to `size` bytes; 0 when nothing is buffered (see eof()).
  size_t Read(char* out, size_t size, uint64_t now_us);
  // Bytes that Read() can return now.
  size_t readable() const { return read_buf_.size() - read_start_; }
  // The peer's stream ended (FIN received and everything before it read).
  bool eof() const { return eof_ && readable() == 0; }
  // Sends FIN after what is queued; on_closed(OK) once it is acknowledged.
  void Close(uint64_t now_us);
  // Sends RESET and closes at once; on_closed(why).
  void Abort(const absl::Status& why);

  State state() const { return state_; }
  bool connected() const { return state_ == State::kConnected; }
  const PeerEndpoint& remote() const { return remote_; }
  uint16_t recv_id() const { return recv_id_; }
  // Payload bytes sent (retransmissions included) and received (in order).
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t bytes_received() const { return bytes_received_; }
  uint64_t retransmissions() const { return retransmissions_; }
  size_t send_window() const { return cc_.window(); }
  size_t bytes_in_flight() const { return in_flight_; }
  uint64_t rtt_us() const { return rtt_us_; }
  // Written and not yet acknowledged.
  size_t send_queued() const { return unsent_bytes() + unacked_bytes_; }
  // One line of its windows and timers, for debug logs.
  std::string DebugString() const;

 private:
  struct Outgoing {
    std::string payload;
    uint64_t sent_us = 0;
    uint16_t seq = 0;
    PacketType type = PacketType::kData;
    uint8_t transmissions = 0;
    bool acked = false;
    bool in_flight = false;  // counted in in_flight_
  };

  Connection(const PeerEndpoint& remote, const ConnectionOptions& options,
             Send send);

  size_t mss() const;
  size_t unsent_bytes() const { return send_buf_.size() - send_start_; }
  uint32_t advertised_window() const;
  std::string SelectiveAck(size_t max_bytes) const;
  bool MaySend(size_t size, bool fresh, uint64_t now_us);
  void Transmit(Outgoing& o, uint64_t now_us);
  void SendControl(PacketType type, uint64_t now_us);
  // Sends what the windows allow: retransmissions first, then new data, then
  // FIN when closing.
  void Flush(uint64_t now_us);
  void HandleAcks(const Packet& p, uint64_t now_us);
  void HandleData(const Packet& p);
  void Acked(Outgoing& o, uint64_t now_us, size_t& bytes);
  bool AwaitingAck() const;
  void Lost(Outgoing& o);
  void CloseWith(const absl::Status& why);
  // Runs the callbacks the last call earned.
  void Notify();

  static constexpr size_t kRing = 2048;  // out-of-order packets held
  // Packets sent and not acknowledged, at most: libtorrent drops packets
  // more than 953 sequence numbers past its last ack.
  static constexpr size_t kMaxOutstanding = 512;

  const PeerEndpoint remote_;
  const ConnectionOptions options_;
  const Send send_;
  Callbacks callbacks_;
  State state_ = State::kSynSent;
  uint16_t recv_id_ = 0;
  uint16_t send_id_ = 0;

  // Sending.
  Ledbat cc_;
  uint16_t seq_nr_ = 0;        // the next sequence number to use
  std::deque<Outgoing> sent_;  // unacknowledged, consecutive sequence numbers
  std::string send_buf_;       // written, not yet packetised
  size_t send_start_ = 0;
  size_t in_flight_ = 0;
  size_t unacked_bytes_ = 0;
  uint32_t peer_window_ = 0;
  bool window_full_ = false;
  bool want_writable_ = false;
  bool close_requested_ = false;
  bool fin_sent_ = false;
  uint16_t fin_seq_ = 0;
  uint16_t last_ack_ = 0;
  int dup_acks_ = 0;
  // A loss halves the window once per window of packets: not again for
  // packets sent before this one.
  uint16_t recovery_seq_ = 0;
  bool in_recovery_ = false;

  // Timers.
  uint64_t rtt_us_ = 0;
  uint64_t rtt_var_us_ = 0;
  uint64_t rto_us_ = 1'000'000;
  uint64_t rto_deadline_us_ = 0;  // 0: unarmed
  int timeouts_ = 0;
  uint64_t last_send_us_ = 0;
  uint64_t last_receive_us_ = 0;
  uint64_t connect_started_us_ = 0;

  // Receiving.
  uint16_t ack_nr_ = 0;  // the last sequence number received in order
  uint32_t reply_micro_ = 0;
  std::vector<std::string> ring_;  // out of order, by seq % kRing; lazy
  std::vector<bool> held_;
  size_t held_count_ = 0;
  size_t held_bytes_ = 0;
  std::string read_buf_;
  size_t read_start_ = 0;
  bool ack_owed_ = false;
  bool eof_ = false;
  bool got_fin_ = false;
  uint16_t eof_seq_ = 0;
  uint32_t last_advertised_ = 0;

  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t retransmissions_ = 0;

  // Pending callbacks.
  bool fire_connected_ = false;
  bool fire_readable_ = false;
  bool fire_writable_ = false;
  bool fire_closed_ = false;
  bool closed_fired_ = false;
  absl::Status close_status_;
};

}  // namespace shoal::utp

#endif  // SHOAL_UTP_CONNECTION_H_
