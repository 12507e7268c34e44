// BEP 19 web seeds: the HTTP(S) servers of a torrent's url-list (and a
// magnet's ws=), downloaded from as peers of its swarm.
//
// A WebSeedLink is a PeerLink (node/swarm_env.h) that speaks HTTP underneath.
// To the swarm it is a peer that has every piece and never chokes (have-all
// and unchoke, with the fast extension), so the request pipeline, endgame,
// verification and bans treat it as they treat any peer. The requests it
// gets are served in order: consecutive blocks join into one run (at most
// max_run_bytes), the run is mapped onto the torrent's files, and each file's
// part is one GET with a Range header on a kept-alive connection (pad files
// and a v2 file's tail padding are zeros and never fetched). Each block of
// the run then arrives at the swarm as a piece message.
//
// A server that fails (a connection error, a timeout, a status other than
// 206, or 200 with the whole file; a body of the wrong length) closes the link
// with the error: its owner (node/torrent_swarm.cc) backs off and, after
// several failures in a row, drops it. A server that sends wrong bytes is
// banned by the swarm as a peer would be, by its URL (ban_key).
//
// Network thread only.
#ifndef SHOAL_NODE_WEB_SEED_H_
#define SHOAL_NODE_WEB_SEED_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/metainfo.h"
#include "node/asio.h"
#include "node/swarm_env.h"
#include "wire/handshake.h"

namespace shoal::node {

// A value type.
struct WebSeedOptions {
  // Bound on each step of an HTTP exchange (connect, TLS, request, response).
  std::chrono::milliseconds timeout{30'000};
  // Largest run of blocks fetched at once.
  uint32_t max_run_bytes = 4 << 20;
  int max_redirects = 5;
  std::string user_agent = "Shoal";
};

// The URL of file `file` of `m` on the web seed `base` (BEP 19). Single-file
// torrent: `base`, with the torrent's name appended if `base` ends in '/'.
// Multi-file: `base` (a '/' added if missing), then the torrent's name and
// the file's path, each component percent-encoded.
std::string WebSeedFileUrl(std::string_view base, const chunk::Metainfo& m,
                           size_t file);

class WebSeedLink final : public PeerLink,
                          public std::enable_shared_from_this<WebSeedLink> {
 public:
  // INVALID_ARGUMENT for a URL that is not http:// or https://.
  static absl::StatusOr<std::shared_ptr<WebSeedLink>> Create(
      asio::io_context& io, std::string url,
      std::shared_ptr<const chunk::Metainfo> metainfo,
      WebSeedOptions options = {});
  ~WebSeedLink() override;
  WebSeedLink(const WebSeedLink&) = delete;
  WebSeedLink& operator=(const WebSeedLink&) = delete;

  // The handshake to give the swarm with it (Swarm::AddPeer): the torrent's
  // hash, the fast extension, a peer ID of its own per URL.
  wire::Handshake handshake(const std::array<uint8_t, 20>& info_hash) const;
  const std::string& url() const { return url_; }
  bool closed() const { return closed_; }
  // Why it closed: OK while open, or when closed without an error (the
  // torrent completed).
  const absl::Status& close_reason() const { return close_reason_; }
  // Seconds the server asked for before a retry (Retry-After with a 503 or
  // 429), if it did.
  std::optional<int> retry_after() const { return retry_after_; }
  // Payload bytes that arrived.
  uint64_t payload_received() const { return payload_; }

  // PeerLink.
  void Start(Handler* handler) override;
  void Send(std::string bytes) override;
  void Send(const wire::Message& message) override;
  void SetRateLimits(std::vector<std::shared_ptr<RateLimit>> down,
                     std::vector<std::shared_ptr<RateLimit>> up) override;
  void Close(const absl::Status& why) override;
  uint64_t key() const override { return key_; }
  const PeerEndpoint& remote() const override { return remote_; }
  std::string ban_key() const override { return url_; }
  std::string_view transport() const override { return "http"; }
  size_t queued_bytes() const override { return 0; }
  uint64_t bytes_received() const override { return received_; }
  uint64_t bytes_sent() const override { return sent_; }

 private:
  struct Conn;  // the kept-alive HTTP connection (Beast stays in the .cc)
  struct Run;   // a run of consecutive requested blocks

  WebSeedLink(asio::io_context& io, std::string url,
              std::shared_ptr<const chunk::Metainfo> metainfo,
              WebSeedOptions options, PeerEndpoint remote);

  asio::awaitable<void> Loop(std::shared_ptr<WebSeedLink> self);
  Run TakeRun();
  // Fills `out` with the run's bytes: the file parts by GET, the rest zeros.
  asio::awaitable<absl::Status> FetchRun(uint64_t start, uint32_t length,
                                         std::string& out);
  // GETs bytes [offset, offset + length) of the file at `url` into `out`.
  asio::awaitable<absl::Status> Get(std::string url, uint64_t offset,
                                    uint32_t length, char* out);
  void OnRequestMessage(const wire::Message& m);
  void Wake();
  // Delivers a message to the swarm; false once the link is closed.
  bool Deliver(const wire::Message& m);

  asio::io_context& io_;
  const std::string url_;
  const std::shared_ptr<const chunk::Metainfo> m_;
  const WebSeedOptions options_;
  const PeerEndpoint remote_;
  const uint64_t key_;
  std::unique_ptr<Conn> conn_;
  asio::steady_timer wake_;
  Handler* handler_ = nullptr;
  std::deque<wire::BlockSpec> queue_;  // requests not yet fetched, in order
  std::vector<std::shared_ptr<RateLimit>> down_;
  bool closed_ = false;
  absl::Status close_reason_;
  std::optional<int> retry_after_;
  uint64_t received_ = 0;
  uint64_t sent_ = 0;
  uint64_t payload_ = 0;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_WEB_SEED_H_
