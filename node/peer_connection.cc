#include "node/peer_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/transfer_all.h"
#include "node/asio_swarm_env.h"

namespace shoal::node {
namespace {

// One read's most: the network thread's shared receive buffer.
constexpr size_t kReadChunk = 256 * 1024;
// µTP connections keep a buffer of their own (a read in progress owns it).
constexpr size_t kUtpReadChunk = 32 * 1024;
// A connection's buffer of a partial message is given back once what it holds
// is small again if it grew past this (a large bitfield or metadata piece).
constexpr size_t kKeepCapacity = 64 * 1024;

// A read smaller than this holds messages, not a stream of blocks: what a
// seed hears from a leecher. Its ACK goes at once (TCP_QUICKACK; Linux
// otherwise delays it up to 40 ms, waiting for data of ours to carry it), for
// a peer with Nagle's algorithm on holds its next small write until then:
// libtorrent's request for a piece we just announced waited 40 ms behind its
// unacknowledged have. The kernel turns quick ACKs off by itself, so each
// such read asks again; a leecher's large reads leave ACKs delayed.
constexpr size_t kQuickAckBelow = 4096;

void QuickAck(int fd) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

uint32_t ReadU32(const char* p) {
  return (uint32_t{static_cast<uint8_t>(p[0])} << 24) |
         (uint32_t{static_cast<uint8_t>(p[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(p[2])} << 8) |
         uint32_t{static_cast<uint8_t>(p[3])};
}

}  // namespace

template <typename Stream>
BasicPeerConnection<Stream>::BasicPeerConnection(Stream socket, uint64_t key,
                                                 std::string pending)
    : socket_(std::move(socket)),
      key_(key),
      in_(std::move(pending)),
      read_timer_(socket_.get_executor()),
      write_timer_(socket_.get_executor()) {
  boost::system::error_code ec;
  remote_ = ToPeerEndpoint(socket_.remote_endpoint(ec));
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // ReadReady reads until it would block
  }
}

template <typename Stream>
BasicPeerConnection<Stream>::~BasicPeerConnection() = default;

template <typename Stream>
void BasicPeerConnection<Stream>::LimitUnsent(size_t bytes) {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    const int v = static_cast<int>(bytes);
    // Best effort: without it, the backlog looks smaller than it is.
    (void)::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT,
                       &v, sizeof v);
  }
}

template <typename Stream>
uint64_t BasicPeerConnection<Stream>::rtt_us() const {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    if (closed_) return 0;
    tcp_info info{};
    socklen_t len = sizeof info;
    // const_cast: native_handle() is not const in Asio; getsockopt reads.
    auto& s = const_cast<Stream&>(socket_);
    if (::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &len) !=
        0)
      return 0;
    return info.tcpi_rtt;
  } else {
    return socket_.rtt_us();
  }
}

template <typename Stream>
void BasicPeerConnection<Stream>::Start(Handler* handler) {
  auto self = this->shared_from_this();  // the handler may drop its reference
                                         // while we parse
  handler_ = handler;
  std::string pending = std::move(in_);
  in_.clear();
  Consume(pending.data(), pending.size());
  if (!closed_) ReadMore();
}

template <typename Stream>
size_t BasicPeerConnection<Stream>::Quota(
    std::vector<std::shared_ptr<RateLimit>>& limits, asio::steady_timer& timer,
    bool& waiting, void (BasicPeerConnection::*retry)()) {
  size_t quota = std::numeric_limits<size_t>::max();
  RateLimit::Clock::duration wait{};
  for (auto& l : limits) {
    quota = std::min(quota, l->Available());
    wait = std::max(wait, l->Wait(1));
  }
  if (quota > 0 || waiting) return quota;
  waiting = true;
  timer.expires_after(std::clamp<RateLimit::Clock::duration>(
      wait, std::chrono::milliseconds(5), std::chrono::milliseconds(100)));
  timer.async_wait([self = this->shared_from_this(), &waiting,
                    retry](boost::system::error_code ec) {
    waiting = false;
    if (ec || self->closed_) return;
    ((*self).*retry)();
  });
  return 0;
}

template <typename Stream>
size_t BasicPeerConnection<Stream>::ReadQuota() {
  if (closed_) return 0;
  if (queued_bytes_ > kHighWater) {
    paused_ = true;
    return 0;
  }
  return Quota(down_, read_timer_, read_waiting_,
               &BasicPeerConnection::ReadMore);
}

template <typename Stream>
void BasicPeerConnection<Stream>::ReadMore() {
  if (closed_ || reading_ || read_waiting_) return;
  reading_ = true;
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    // Posted, not run here: the caller may be inside a handler of ours.
    asio::post(socket_.get_executor(),
               [self = this->shared_from_this()] { self->ReadReady(); });
  } else {
    // µTP delivers into the buffer of a pending read: it must be ours.
    if (!utp_buffer_) utp_buffer_.reset(new char[kUtpReadChunk]);
    const size_t chunk = std::min(kUtpReadChunk, ReadQuota());
    if (chunk == 0) {
      reading_ = false;
      return;
    }
    socket_.async_read_some(asio::buffer(utp_buffer_.get(), chunk),
                            [self = this->shared_from_this()](
                                boost::system::error_code ec, size_t n) {
                              self->reading_ = false;
                              if (self->closed_) return;
                              if (ec) return self->ReadFailed(ec);
                              self->Received(self->utp_buffer_.get(), n);
                              self->ReadMore();
                            });
  }
}

template <typename Stream>
void BasicPeerConnection<Stream>::ReadReady() {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    // Reads go into one buffer the network thread shares among its
    // connections, and only a message cut by the end of a read is copied into
    // the connection's own: an idle connection holds no receive buffer. The
    // socket is read until it would block before waiting on it again (Asio's
    // reactor is edge-triggered, and a wait does not look first).
    static thread_local std::unique_ptr<char[]> scratch(new char[kReadChunk]);
    for (;;) {
      if (closed_) return;
      const size_t chunk = std::min(kReadChunk, ReadQuota());
      if (chunk == 0) {
        reading_ = false;  // resumed by the write side or the rate timer
        return;
      }
      boost::system::error_code ec;
      const size_t n =
          socket_.read_some(asio::buffer(scratch.get(), chunk), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        socket_.async_wait(
            tcp::socket::wait_read,
            [self = this->shared_from_this()](boost::system::error_code ec) {
              if (self->closed_) return;
              if (ec) return self->ReadFailed(ec);
              self->ReadReady();
            });
        return;
      }
      if (ec) return ReadFailed(ec);
      if (n < kQuickAckBelow) QuickAck(socket_.native_handle());
      Received(scratch.get(), n);
      if (n == chunk && !closed_) {
        // Likely more: the other connections' turn first.
        asio::post(socket_.get_executor(),
                   [self = this->shared_from_this()] { self->ReadReady(); });
        return;
      }
    }
  }
}

template <typename Stream>
void BasicPeerConnection<Stream>::ReadFailed(boost::system::error_code ec) {
  reading_ = false;
  Close(ec == asio::error::eof
            ? absl::CancelledError("peer closed the connection")
            : absl::UnavailableError(absl::StrCat("read: ", ec.message())));
}

template <typename Stream>
void BasicPeerConnection<Stream>::Received(char* data, size_t n) {
  bytes_received_ += n;
  if (ciphers_.decrypt) ciphers_.decrypt->Apply(data, n);
  for (auto& l : down_) l->Consume(n);
  Consume(data, n);
}

template <typename Stream>
void BasicPeerConnection<Stream>::Consume(const char* data, size_t n) {
  // First the message the last read cut short, completed from the front of
  // the new bytes (its length says how many it lacks).
  while (!in_.empty() && n > 0 && !closed_) {
    size_t want = 4 - std::min<size_t>(in_.size(), 4);
    if (want == 0) want = 4 + size_t{ReadU32(in_.data())} - in_.size();
    const size_t take = std::min(want, n);
    in_.append(data, take);
    data += take;
    n -= take;
    if (in_.size() < 4) continue;
    std::string_view whole(in_);
    auto m = wire::ParseMessage(whole);
    if (!m.ok()) return Close(m.status());
    if (!m->has_value()) continue;  // a longer message than it could say yet
    handler_->OnMessage(*this, **m);
    in_.clear();
  }
  // Then every whole message straight from the read buffer.
  std::string_view rest(data, n);
  while (!closed_ && !rest.empty()) {
    auto m = wire::ParseMessage(rest);
    if (!m.ok()) return Close(m.status());
    if (!m->has_value()) break;
    handler_->OnMessage(*this, **m);
  }
  if (closed_) return;
  // Keep the tail; give back what a large message left behind.
  in_.append(rest);
  if (in_.capacity() > kKeepCapacity && in_.size() <= kKeepCapacity / 2)
    in_.shrink_to_fit();
}

template <typename Stream>
void BasicPeerConnection<Stream>::Send(const wire::Message& message) {
  std::string bytes;
  wire::AppendMessage(message, bytes);
  Send(std::move(bytes));
}

template <typename Stream>
void BasicPeerConnection<Stream>::Send(std::string bytes) {
  if (closed_ || bytes.empty()) return;
  if (ciphers_.encrypt) ciphers_.encrypt->Apply(bytes);
  queued_bytes_ += bytes.size();
  out_.push_back(Segment{.own = std::move(bytes)});
  WriteMore();
}

template <typename Stream>
void BasicPeerConnection<Stream>::SendShared(
    std::string head, std::shared_ptr<const std::string> data, size_t offset,
    size_t length) {
  if (closed_) return;
  if (ciphers_.encrypt) {  // RC4 works in place: PeerLink's copy
    return PeerLink::SendShared(std::move(head), std::move(data), offset,
                                length);
  }
  queued_bytes_ += head.size() + length;
  if (!head.empty()) out_.push_back(Segment{.own = std::move(head)});
  if (length > 0) {
    out_.push_back(
        Segment{.shared = std::move(data), .offset = offset, .length = length});
  }
  WriteMore();
}

template <typename Stream>
void BasicPeerConnection<Stream>::WriteMore() {
  if (writing_ || write_waiting_ || out_.empty() || closed_) return;
  size_t quota =
      Quota(up_, write_timer_, write_waiting_, &BasicPeerConnection::WriteMore);
  if (quota == 0) return;
  writing_ = true;
  // Gather what is queued (and allowed) into one write.
  std::vector<asio::const_buffer> bufs;
  for (size_t i = 0; i < out_.size() && bufs.size() < 64 && quota > 0; ++i) {
    const size_t skip = i == 0 ? front_written_ : 0;
    const size_t len = std::min(out_[i].size() - skip, quota);
    bufs.emplace_back(asio::buffer(out_[i].data() + skip, len));
    quota -= len;
  }
  asio::async_write(
      socket_, bufs, TransferAll(),
      [self = this->shared_from_this()](boost::system::error_code ec,
                                        size_t bytes) {
        self->writing_ = false;
        if (self->closed_) return;
        if (ec) {
          self->Close(
              absl::UnavailableError(absl::StrCat("write: ", ec.message())));
          return;
        }
        self->bytes_sent_ += bytes;
        for (auto& l : self->up_) l->Consume(bytes);
        self->queued_bytes_ -= bytes;
        // Drop what went out whole; remember how much of a partial one did.
        size_t done = bytes + self->front_written_;
        while (!self->out_.empty() && done >= self->out_.front().size()) {
          done -= self->out_.front().size();
          self->out_.pop_front();
        }
        self->front_written_ = done;
        if (self->queued_bytes_ < kLowWater) {
          if (self->paused_) {
            self->paused_ = false;
            self->ReadMore();
          }
          if (self->handler_) self->handler_->OnWritable(*self);
        }
        self->WriteMore();
      });
}

template <typename Stream>
void BasicPeerConnection<Stream>::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  if constexpr (std::is_same_v<Stream, tcp::socket>)
    socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  read_timer_.cancel();
  write_timer_.cancel();
  if (handler_) handler_->OnClose(*this, why);
}

template class BasicPeerConnection<tcp::socket>;
template class BasicPeerConnection<UtpSocket>;

}  // namespace shoal::node
