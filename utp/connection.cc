#include "utp/connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shoal::utp {
namespace {

constexpr uint64_t kMinRtoUs = 500'000;
constexpr uint64_t kMaxRtoUs = 60'000'000;
// A bare ACK keeps a NAT mapping alive after this much silence.
constexpr uint64_t kKeepAliveUs = 29'000'000;
// Nothing heard for this long: the peer is gone.
constexpr uint64_t kIdleUs = 300'000'000;
// Selective acks in data packets stay short; a bare ACK may say more.
constexpr size_t kDataSackBytes = 4;
constexpr size_t kStateSackBytes = 32;

// Drops `n` bytes from the front of a buffer read from `start` on; moves the
// rest down only when the dead prefix is large and most of the string.
void Consume(std::string& buf, size_t& start, size_t n) {
  start += n;
  if (start == buf.size()) {
    buf.clear();
    start = 0;
  } else if (start > (1 << 20) && start * 2 > buf.size()) {
    buf.erase(0, start);
    start = 0;
  }
}

uint16_t Distance(uint16_t from, uint16_t to) {
  return static_cast<uint16_t>(to - from);
}

}  // namespace

Connection::Connection(const PeerEndpoint& remote,
                       const ConnectionOptions& options, Send send)
    : remote_(remote),
      options_(options),
      send_(std::move(send)),
      cc_(options.packet_size - kHeaderSize - 2 - kDataSackBytes,
          options.send_buffer),
      held_(kRing, false) {}

size_t Connection::mss() const {
  return options_.packet_size - kHeaderSize - 2 - kDataSackBytes;
}

std::unique_ptr<Connection> Connection::Connect(
    const PeerEndpoint& remote, uint16_t recv_id, uint16_t seq_nr,
    const ConnectionOptions& options, Send send, uint64_t now_us) {
  std::unique_ptr<Connection> c(
      new Connection(remote, options, std::move(send)));
  c->state_ = State::kSynSent;
  c->recv_id_ = recv_id;
  c->send_id_ = static_cast<uint16_t>(recv_id + 1);
  c->seq_nr_ = seq_nr;
  c->last_receive_us_ = now_us;
  c->connect_started_us_ = now_us;
  Outgoing syn;
  syn.type = PacketType::kSyn;
  syn.seq = c->seq_nr_++;
  c->sent_.push_back(std::move(syn));
  c->Transmit(c->sent_.back(), now_us);
  return c;
}

std::unique_ptr<Connection> Connection::Accept(const PeerEndpoint& remote,
                                               const Packet& syn,
                                               uint16_t seq_nr,
                                               const ConnectionOptions& options,
                                               Send send, uint64_t now_us) {
  std::unique_ptr<Connection> c(
      new Connection(remote, options, std::move(send)));
  c->state_ = State::kConnected;
  c->recv_id_ = static_cast<uint16_t>(syn.header.connection_id + 1);
  c->send_id_ = syn.header.connection_id;
  // The ACK of the SYN carries the sequence number our first data packet
  // will use (a STATE packet does not consume one).
  c->seq_nr_ = seq_nr;
  c->ack_nr_ = syn.header.seq_nr;
  c->peer_window_ = syn.header.wnd_size;
  c->last_ack_ = static_cast<uint16_t>(seq_nr - 1);
  c->last_receive_us_ = now_us;
  if (syn.header.timestamp_us != 0)
    c->reply_micro_ = static_cast<uint32_t>(now_us) - syn.header.timestamp_us;
  c->SendControl(PacketType::kState, now_us);
  return c;
}

void Connection::SetCallbacks(Callbacks callbacks) {
  callbacks_ = std::move(callbacks);
}

uint32_t Connection::advertised_window() const {
  const size_t used = readable() + held_bytes_;
  return used >= options_.receive_buffer
             ? 0
             : static_cast<uint32_t>(options_.receive_buffer - used);
}

std::string Connection::SelectiveAck(size_t max_bytes) const {
  if (held_count_ == 0) return {};
  // Bit i stands for ack_nr + 2 + i.
  std::string mask(max_bytes, '\0');
  size_t last = 0;
  bool any = false;
  for (size_t i = 0; i < max_bytes * 8; ++i) {
    const auto seq = static_cast<uint16_t>(ack_nr_ + 2 + i);
    if (!held_[seq % kRing]) continue;
    mask[i / 8] =
        static_cast<char>(static_cast<uint8_t>(mask[i / 8]) | (1u << (i % 8)));
    last = i;
    any = true;
  }
  if (!any) return {};
  mask.resize((last / 32 + 1) * 4);
  return mask;
}

void Connection::Transmit(Outgoing& o, uint64_t now_us) {
  Header h;
  h.type = o.type;
  h.connection_id = o.type == PacketType::kSyn ? recv_id_ : send_id_;
  h.timestamp_us = static_cast<uint32_t>(now_us);
  h.timestamp_diff_us = reply_micro_;
  h.wnd_size = advertised_window();
  h.seq_nr = o.seq;
  h.ack_nr = ack_nr_;
  std::string datagram;
  AppendPacket(
      h,
      o.type == PacketType::kSyn ? std::string() : SelectiveAck(kDataSackBytes),
      o.payload, datagram);
  if (o.transmissions > 0) ++retransmissions_;
  if (o.transmissions < 255) ++o.transmissions;
  o.sent_us = now_us;
  if (!o.in_flight) {
    o.in_flight = true;
    in_flight_ += o.payload.size();
  }
  bytes_sent_ += o.payload.size();
  last_advertised_ = h.wnd_size;
  last_send_us_ = now_us;
  ack_owed_ = false;
  if (rto_deadline_us_ == 0) rto_deadline_us_ = now_us + rto_us_;
  send_(datagram);
}

void Connection::SendControl(PacketType type, uint64_t now_us) {
  Header h;
  h.type = type;
  h.connection_id = send_id_;
  h.timestamp_us = static_cast<uint32_t>(now_us);
  h.timestamp_diff_us = reply_micro_;
  h.wnd_size = advertised_window();
  h.seq_nr = seq_nr_;
  h.ack_nr = ack_nr_;
  std::string datagram;
  AppendPacket(h,
               type == PacketType::kState ? SelectiveAck(kStateSackBytes)
                                          : std::string(),
               {}, datagram);
  last_advertised_ = h.wnd_size;
  last_send_us_ = now_us;
  ack_owed_ = false;
  send_(datagram);
}

// Whether a packet of `size` may go now. The congestion window counts what
// is in flight and may be exceeded by one packet when nothing is (BEP 29).
// The peer's receive window counts every byte it does not hold yet, holes
// included (`fresh`: a new packet, not yet among them): a receiver whose
// buffer fills with packets after a hole (libtorrent's holds 1 MiB) could
// not take the hole's retransmission. Only a timeout's probe passes a shut
// window.
bool Connection::MaySend(size_t size, bool fresh, uint64_t now_us) {
  const size_t unheld = unacked_bytes_ + (fresh ? size : 0);
  if (unheld > peer_window_) {
    // The receiver's window is shut: the retransmission timer probes it.
    if (in_flight_ == 0 && rto_deadline_us_ == 0)
      rto_deadline_us_ = now_us + rto_us_;
    return false;
  }
  if (in_flight_ + size <= cc_.window() || in_flight_ == 0) return true;
  window_full_ = true;
  return false;
}

void Connection::Flush(uint64_t now_us) {
  if (state_ != State::kConnected && state_ != State::kClosing) return;
  // Retransmissions first, oldest first.
  for (Outgoing& o : sent_) {
    if (o.acked || o.in_flight) continue;
    if (!MaySend(o.payload.size(), /*fresh=*/false, now_us)) return;
    Transmit(o, now_us);
  }
  while (unsent_bytes() > 0 && sent_.size() < kMaxOutstanding) {
    const size_t size = std::min(mss(), unsent_bytes());
    // Nagle: a short packet waits while others are in flight.
    if (size < mss() && in_flight_ > 0) return;
    if (!MaySend(size, /*fresh=*/true, now_us)) return;
    Outgoing o;
    o.payload.assign(send_buf_, send_start_, size);
    Consume(send_buf_, send_start_, size);
    o.seq = seq_nr_++;
    unacked_bytes_ += size;
    sent_.push_back(std::move(o));
    Transmit(sent_.back(), now_us);
  }
  if (close_requested_ && !fin_sent_ && unsent_bytes() == 0 &&
      sent_.size() < kMaxOutstanding) {
    Outgoing fin;
    fin.type = PacketType::kFin;
    fin.seq = seq_nr_++;
    fin_seq_ = fin.seq;
    fin_sent_ = true;
    state_ = State::kClosing;
    sent_.push_back(std::move(fin));
    Transmit(sent_.back(), now_us);
  }
}

void Connection::Acked(Outgoing& o, uint64_t now_us, size_t& bytes) {
  if (o.acked) return;
  o.acked = true;
  if (o.in_flight) {
    o.in_flight = false;
    in_flight_ -= o.payload.size();
  }
  unacked_bytes_ -= o.payload.size();
  bytes += o.payload.size();
  if (o.transmissions == 1) {
    const uint64_t sample = now_us - o.sent_us;
    if (rtt_us_ == 0) {
      rtt_us_ = sample;
      rtt_var_us_ = sample / 2;
    } else {
      const uint64_t delta =
          rtt_us_ > sample ? rtt_us_ - sample : sample - rtt_us_;
      rtt_var_us_ = (3 * rtt_var_us_ + delta) / 4;
      rtt_us_ = (7 * rtt_us_ + sample) / 8;
    }
    rto_us_ = std::clamp(rtt_us_ + 4 * rtt_var_us_, kMinRtoUs, kMaxRtoUs);
  }
}

// A transmitted packet awaits its ack: bytes in flight, or our FIN, which
// carries none (in_flight_ does not count it; without this, an ack of the
// data before it would stop the timer and a lost FIN would never go again).
bool Connection::AwaitingAck() const {
  if (in_flight_ > 0) return true;
  if (!fin_sent_ || sent_.empty()) return false;
  const Outgoing& last = sent_.back();
  return last.type == PacketType::kFin && last.in_flight && !last.acked;
}

void Connection::Lost(Outgoing& o) {
  if (o.acked || !o.in_flight) return;
  o.in_flight = false;
  in_flight_ -= o.payload.size();
  if (!in_recovery_ || SeqLess(recovery_seq_, o.seq) ||
      o.seq == recovery_seq_) {
    cc_.OnLoss();
    in_recovery_ = true;
    recovery_seq_ = seq_nr_;
  }
}

void Connection::HandleAcks(const Packet& p, uint64_t now_us) {
  const Header& h = p.header;
  if (sent_.empty()) {
    last_ack_ = h.ack_nr;
    return;
  }
  const uint16_t first = sent_.front().seq;
  // Acks outside what we have sent are ignored (stale or forged).
  const uint16_t ack_dist = Distance(first, h.ack_nr);
  const bool ack_valid =
      ack_dist < sent_.size() || h.ack_nr == static_cast<uint16_t>(first - 1);
  if (!ack_valid) return;
  size_t bytes = 0;
  bool progress = false;
  if (h.ack_nr != static_cast<uint16_t>(first - 1)) {
    for (size_t i = 0; i <= ack_dist; ++i) {
      if (!sent_[i].acked) progress = true;
      Acked(sent_[i], now_us, bytes);
    }
  }
  // Selective acks: bit i is ack_nr + 2 + i.
  size_t sacked = 0;
  for (size_t i = 0; i < p.sack.size() * 8; ++i) {
    if (!(static_cast<uint8_t>(p.sack[i / 8]) & (1u << (i % 8)))) continue;
    const uint16_t d = Distance(first, static_cast<uint16_t>(h.ack_nr + 2 + i));
    if (d >= sent_.size()) continue;
    if (!sent_[d].acked) progress = true;
    Acked(sent_[d], now_us, bytes);
    ++sacked;
  }
  const bool syn_acked = state_ == State::kSynSent && sent_.front().acked;
  // Loss: an unacked packet with three acked after it; or three duplicate
  // acks of the packet before the oldest.
  if (sacked > 0) {
    int after = 0;
    for (size_t i = sent_.size(); i-- > 0;) {
      Outgoing& o = sent_[i];
      if (o.acked) {
        ++after;
      } else if (after >= 3 && o.in_flight) {
        Lost(o);
      }
    }
  }
  if (!progress && h.ack_nr == last_ack_ && p.payload.empty() &&
      h.type == PacketType::kState && in_flight_ > 0) {
    if (++dup_acks_ == 3) {
      const uint16_t d = Distance(first, static_cast<uint16_t>(h.ack_nr + 1));
      if (d < sent_.size()) Lost(sent_[d]);
    }
  } else if (progress) {
    dup_acks_ = 0;
  }
  last_ack_ = h.ack_nr;
  if (progress) {
    cc_.OnDelaySample(h.timestamp_diff_us, now_us);
    cc_.OnAck(bytes, window_full_);
    window_full_ = false;
    timeouts_ = 0;
    rto_deadline_us_ = 0;
    if (in_recovery_ && !SeqLess(h.ack_nr, recovery_seq_)) in_recovery_ = false;
  }
  while (!sent_.empty() && sent_.front().acked) sent_.pop_front();
  if (!sent_.empty() && AwaitingAck() && rto_deadline_us_ == 0)
    rto_deadline_us_ = now_us + rto_us_;
  if (syn_acked) {
    state_ = State::kConnected;
    // The ACK of our SYN carries the peer's first sequence number.
    ack_nr_ = static_cast<uint16_t>(h.seq_nr - 1);
    fire_connected_ = true;
  }
  if (want_writable_ && send_queued() < options_.send_buffer / 2) {
    want_writable_ = false;
    fire_writable_ = true;
  }
  // Our FIN is acknowledged: the connection is done.
  if (state_ == State::kClosing && fin_sent_ && !SeqLess(h.ack_nr, fin_seq_) &&
      sent_.empty()) {
    CloseWith(absl::OkStatus());
  }
}

void Connection::HandleData(const Packet& p) {
  const Header& h = p.header;
  const uint16_t seq = h.seq_nr;
  if (got_fin_ && SeqLess(eof_seq_, seq)) return;  // past the end
  if (h.type == PacketType::kFin) {
    got_fin_ = true;
    eof_seq_ = seq;
  }
  ack_owed_ = true;
  const uint16_t ahead = Distance(ack_nr_, seq);
  if (ahead == 0 || ahead >= 0x8000) return;  // a duplicate: ack again
  if (ahead >= kRing) return;                 // too far ahead
  if (ahead > 1) {
    const size_t slot = seq % kRing;
    if (held_[slot]) return;
    // The ring's strings only once a packet arrives out of order (64 KiB
    // per connection otherwise spent for nothing).
    if (ring_.empty()) ring_.resize(kRing);
    if (held_bytes_ + readable() + p.payload.size() > options_.receive_buffer)
      return;
    ring_[slot].assign(p.payload);
    held_[slot] = true;
    ++held_count_;
    held_bytes_ += p.payload.size();
    return;
  }
  read_buf_.append(p.payload);
  bytes_received_ += p.payload.size();
  ack_nr_ = seq;
  while (held_count_ > 0) {
    const auto next = static_cast<uint16_t>(ack_nr_ + 1);
    const size_t slot = next % kRing;
    if (!held_[slot]) break;
    read_buf_.append(ring_[slot]);
    bytes_received_ += ring_[slot].size();
    held_bytes_ -= ring_[slot].size();
    std::string().swap(ring_[slot]);
    held_[slot] = false;
    --held_count_;
    ack_nr_ = next;
  }
  if (!p.payload.empty() || held_count_ == 0) fire_readable_ = true;
  if (got_fin_ && ack_nr_ == eof_seq_) {
    eof_ = true;
    fire_readable_ = true;
  }
}

void Connection::OnPacket(const Packet& p, uint64_t now_us) {
  if (state_ == State::kClosed) return;
  const Header& h = p.header;
  last_receive_us_ = now_us;
  if (h.type == PacketType::kReset) {
    CloseWith(absl::UnavailableError("utp connection reset by peer"));
    Notify();
    return;
  }
  if (h.type == PacketType::kSyn) {
    // Our ACK was lost: the peer sends its SYN again.
    if (state_ != State::kSynSent && h.seq_nr == ack_nr_) ack_owed_ = true;
    return;
  }
  if (h.timestamp_us != 0)
    reply_micro_ = static_cast<uint32_t>(now_us) - h.timestamp_us;
  peer_window_ = h.wnd_size;
  if (state_ == State::kSynSent && h.type != PacketType::kState) return;
  HandleAcks(p, now_us);
  if (state_ == State::kClosed) {
    Notify();
    return;
  }
  if (h.type == PacketType::kData || h.type == PacketType::kFin) HandleData(p);
  Flush(now_us);
  Notify();
}

void Connection::FlushAck(uint64_t now_us) {
  if (!ack_owed_ || state_ == State::kClosed || state_ == State::kSynSent)
    return;
  SendControl(PacketType::kState, now_us);
}

void Connection::Tick(uint64_t now_us) {
  if (state_ == State::kClosed) return;
  if (now_us - last_receive_us_ > kIdleUs) {
    CloseWith(absl::DeadlineExceededError("utp peer silent for 5 minutes"));
    Notify();
    return;
  }
  if (state_ == State::kSynSent && options_.connect_timeout_us > 0 &&
      now_us - connect_started_us_ >= options_.connect_timeout_us) {
    CloseWith(absl::DeadlineExceededError("utp connect timed out"));
    Notify();
    return;
  }
  if (rto_deadline_us_ != 0 && now_us >= rto_deadline_us_) {
    rto_deadline_us_ = 0;
    ++timeouts_;
    // A closing connection whose FIN goes unanswered gives up sooner.
    const int limit = state_ == State::kSynSent   ? options_.connect_retries
                      : state_ == State::kClosing ? 3
                                                  : options_.max_timeouts;
    if (timeouts_ > limit) {
      CloseWith(absl::DeadlineExceededError(
          state_ == State::kSynSent ? "utp connect timed out"
                                    : "utp peer stopped acknowledging"));
      Notify();
      return;
    }
    cc_.OnTimeout();
    rto_us_ = std::min(rto_us_ * 2, kMaxRtoUs);
    in_recovery_ = false;
    // Everything in flight is presumed lost; the oldest goes again now (the
    // window is one packet), the rest as acks open it.
    for (Outgoing& o : sent_) {
      if (!o.acked && o.in_flight) {
        o.in_flight = false;
        in_flight_ -= o.payload.size();
      }
    }
    if (!sent_.empty()) {
      Transmit(sent_.front(), now_us);
    } else if (unsent_bytes() > 0) {
      // A zero-window probe: one packet whatever the peer's window says.
      // It takes no RTT sample, so the timer keeps backing off (up to 60 s)
      // while the window stays shut: a reader paused for long receives a
      // probe now and then, not a stream of them.
      const uint32_t saved = peer_window_;
      peer_window_ = static_cast<uint32_t>(mss());
      const size_t before = sent_.size();
      Flush(now_us);
      peer_window_ = saved;
      if (sent_.size() > before) sent_.back().transmissions = 2;
    }
  }
  if (state_ == State::kConnected && now_us - last_send_us_ > kKeepAliveUs)
    SendControl(PacketType::kState, now_us);
  Notify();
}

size_t Connection::Write(std::string_view data, uint64_t now_us) {
  if (state_ != State::kConnected || close_requested_) return 0;
  const size_t queued = send_queued();
  const size_t room =
      queued >= options_.send_buffer ? 0 : options_.send_buffer - queued;
  const size_t n = std::min(room, data.size());
  if (n < data.size()) want_writable_ = true;
  send_buf_.append(data.data(), n);
  Flush(now_us);
  Notify();
  return n;
}

size_t Connection::Read(char* out, size_t size, uint64_t now_us) {
  const size_t n = std::min(size, readable());
  if (n == 0) return 0;
  const uint32_t before = advertised_window();
  std::copy_n(read_buf_.data() + read_start_, n, out);
  Consume(read_buf_, read_start_, n);
  // The window reopened from nearly shut: tell the peer at once.
  if (state_ != State::kClosed && last_advertised_ < 2 * mss() &&
      advertised_window() >= 2 * mss() && before < advertised_window()) {
    SendControl(PacketType::kState, now_us);
  }
  return n;
}

void Connection::Close(uint64_t now_us) {
  if (state_ == State::kClosed || close_requested_) return;
  if (state_ == State::kSynSent) {
    CloseWith(absl::CancelledError("utp connect cancelled"));
    Notify();
    return;
  }
  close_requested_ = true;
  Flush(now_us);
  Notify();
}

void Connection::Abort(const absl::Status& why) {
  if (state_ == State::kClosed) return;
  if (state_ != State::kSynSent) SendControl(PacketType::kReset, last_send_us_);
  CloseWith(why);
  Notify();
}

void Connection::CloseWith(const absl::Status& why) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_status_ = why;
  fire_closed_ = true;
  rto_deadline_us_ = 0;
  // A reader waiting for data learns of the end.
  fire_readable_ = true;
  eof_ = true;
}

std::string Connection::DebugString() const {
  return absl::StrCat(
      remote_.ToString(), " id ", recv_id_, " state ", static_cast<int>(state_),
      " cwnd ", cc_.window(), " delay ", cc_.queuing_delay_us(), "us peer_wnd ",
      peer_window_, " in_flight ", in_flight_, " packets ", sent_.size(),
      " unsent ", unsent_bytes(), " rtt ", rtt_us_, " rto ", rto_us_,
      " timeouts ", timeouts_, " held ", held_count_, " readable ", readable(),
      " sent ", bytes_sent_, " received ", bytes_received_, " resent ",
      retransmissions_, " seq_nr ", seq_nr_, " first ",
      sent_.empty() ? -1 : sent_.front().seq, " last_ack ", last_ack_,
      " ack_nr ", ack_nr_, " dup ", dup_acks_, " since_rx ",
      static_cast<int64_t>(last_send_us_ - last_receive_us_));
}

void Connection::Notify() {
  // Copies: a callback may replace the callbacks or close the connection.
  if (fire_connected_) {
    fire_connected_ = false;
    if (callbacks_.on_connected) callbacks_.on_connected();
  }
  if (fire_readable_) {
    fire_readable_ = false;
    if (callbacks_.on_readable) callbacks_.on_readable();
  }
  if (fire_writable_) {
    fire_writable_ = false;
    if (callbacks_.on_writable) callbacks_.on_writable();
  }
  if (fire_closed_ && !closed_fired_) {
    fire_closed_ = false;
    closed_fired_ = true;
    if (callbacks_.on_closed) callbacks_.on_closed(close_status_);
  }
}

}  // namespace shoal::utp
