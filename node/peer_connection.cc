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

constexpr size_t kReadChunk = 256 * 1024;

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
  if constexpr (std::is_same_v<Stream, tcp::socket>)
    socket_.set_option(tcp::no_delay(true), ec);
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
void BasicPeerConnection<Stream>::Start(Handler* handler) {
  auto self = this->shared_from_this();  // the handler may drop its reference
                                         // while we parse
  handler_ = handler;
  Parse();
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
void BasicPeerConnection<Stream>::ReadMore() {
  if (closed_ || reading_ || read_waiting_) return;
  if (queued_bytes_ > kHighWater) {
    paused_ = true;
    return;
  }
  const size_t chunk = std::min(
      kReadChunk,
      Quota(down_, read_timer_, read_waiting_, &BasicPeerConnection::ReadMore));
  if (chunk == 0) return;
  reading_ = true;
  // Compact the buffer, then read into its tail.
  if (in_start_ > 0) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
  const size_t old = in_.size();
  in_.resize(old + chunk);
  socket_.async_read_some(
      asio::buffer(in_.data() + old, chunk),
      [self = this->shared_from_this(), old](boost::system::error_code ec,
                                             size_t n) {
        self->reading_ = false;
        self->in_.resize(old + n);
        if (self->closed_) return;
        if (ec) {
          self->Close(ec == asio::error::eof
                          ? absl::CancelledError("peer closed the connection")
                          : absl::UnavailableError(
                                absl::StrCat("read: ", ec.message())));
          return;
        }
        self->bytes_received_ += n;
        if (self->ciphers_.decrypt) {
          self->ciphers_.decrypt->Apply(self->in_.data() + old, n);
        }
        for (auto& l : self->down_) l->Consume(n);
        self->Parse();
        self->ReadMore();
      });
}

template <typename Stream>
void BasicPeerConnection<Stream>::Parse() {
  while (!closed_) {
    std::string_view rest(in_.data() + in_start_, in_.size() - in_start_);
    const size_t before = rest.size();
    auto m = wire::ParseMessage(rest);
    if (!m.ok()) {
      Close(m.status());
      return;
    }
    if (!m->has_value()) return;
    in_start_ += before - rest.size();
    handler_->OnMessage(*this, **m);
  }
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
  out_.push_back(std::move(bytes));
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
