#include "node/peer_connection.h"

#include "absl/strings/str_cat.h"

namespace shoal::node {
namespace {

constexpr size_t kReadChunk = 256 * 1024;

}  // namespace

PeerConnection::PeerConnection(tcp::socket socket, uint64_t key,
                               std::string pending)
    : socket_(std::move(socket)), key_(key), in_(std::move(pending)) {
  boost::system::error_code ec;
  remote_ = socket_.remote_endpoint(ec);
  socket_.set_option(tcp::no_delay(true), ec);
}

PeerConnection::~PeerConnection() = default;

void PeerConnection::Start(Handler* handler) {
  auto self =
      shared_from_this();  // the handler may drop its reference while we parse
  handler_ = handler;
  Parse();
  if (!closed_) ReadMore();
}

void PeerConnection::ReadMore() {
  if (closed_ || reading_) return;
  if (queued_bytes_ > kHighWater) {
    paused_ = true;
    return;
  }
  reading_ = true;
  // Compact the buffer, then read into its tail.
  if (in_start_ > 0) {
    in_.erase(0, in_start_);
    in_start_ = 0;
  }
  const size_t old = in_.size();
  in_.resize(old + kReadChunk);
  socket_.async_read_some(
      asio::buffer(in_.data() + old, kReadChunk),
      [self = shared_from_this(), old](boost::system::error_code ec, size_t n) {
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
        self->Parse();
        self->ReadMore();
      });
}

void PeerConnection::Parse() {
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

void PeerConnection::Send(const wire::Message& message) {
  std::string bytes;
  wire::AppendMessage(message, bytes);
  Send(std::move(bytes));
}

void PeerConnection::Send(std::string bytes) {
  if (closed_ || bytes.empty()) return;
  queued_bytes_ += bytes.size();
  out_.push_back(std::move(bytes));
  WriteMore();
}

void PeerConnection::WriteMore() {
  if (writing_ || out_.empty() || closed_) return;
  writing_ = true;
  // Gather what is queued into one write.
  std::vector<asio::const_buffer> bufs;
  size_t n = std::min<size_t>(out_.size(), 64);
  for (size_t i = 0; i < n; ++i) bufs.emplace_back(asio::buffer(out_[i]));
  asio::async_write(socket_, bufs,
                    [self = shared_from_this(), n](boost::system::error_code ec,
                                                   size_t bytes) {
                      self->writing_ = false;
                      if (self->closed_) return;
                      if (ec) {
                        self->Close(absl::UnavailableError(
                            absl::StrCat("write: ", ec.message())));
                        return;
                      }
                      self->bytes_sent_ += bytes;
                      for (size_t i = 0; i < n; ++i) {
                        self->queued_bytes_ -= self->out_.front().size();
                        self->out_.pop_front();
                      }
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

void PeerConnection::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (handler_) handler_->OnClose(*this, why);
}

}  // namespace shoal::node
