// The network side of a node: the peer port, the network thread, and the swarms
// of the content being fetched or served.
//
// One thread runs an io_context that owns every socket and every swarm (no
// locks on that state). Other threads (gRPC handlers) reach it through Fetch
// and Forget, which post work to it and wait for the answer.
#ifndef SHOAL_NODE_SESSION_H_
#define SHOAL_NODE_SESSION_H_

#include <array>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/thread_pool.h"
#include "chunk/content_id.h"
#include "node/asio.h"
#include "node/content_swarm.h"
#include "node/options.h"
#include "node/piece_events.h"
#include "store/chunk_store.h"

namespace shoal::node {

// Thread-safe: public methods may be called from any thread.
class Session {
 public:
  Session(store::ChunkStore& store, ThreadPool& pool, std::string client_name);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Binds the peer port (TCP, and UDP for the DHT) and starts the network
  // thread. Returns the address as bound. UNAVAILABLE if the port is taken;
  // INVALID_ARGUMENT for a host that is not an IP address.
  absl::StatusOr<HostPort> Start(const HostPort& listen);

  // Starts (or joins) fetching `id` from `peers` (their listen addresses) and
  // returns the events readers wait on. Content already complete locally
  // returns events with every piece.
  absl::StatusOr<std::shared_ptr<PieceEvents>> Fetch(
      const chunk::ContentId& id, const std::vector<HostPort>& peers);

  // Closes every connection and stops the network thread. Work the hashing pool
  // still holds may post to the io_context afterwards; it is never run.
  // Idempotent.
  void Stop();

  // Drops the swarm of `id` (its content was removed).
  void Forget(const chunk::ContentId& id);

  // Number of open peer connections (for node info).
  size_t NumPeers();

 private:
  using Key = std::string;  // the 20-byte info-hash

  // Network thread only.
  ContentSwarm* SwarmFor(const chunk::ContentId& id);
  ContentSwarm* SwarmForInfoHash(std::string_view info_hash);
  wire::Handshake OurHandshake(const std::array<uint8_t, 20>& info_hash) const;
  void Accept();
  asio::awaitable<void> Incoming(tcp::socket socket);
  asio::awaitable<void> Outgoing(chunk::ContentId id, tcp::endpoint to);

  store::ChunkStore& store_;
  ThreadPool& pool_;
  const std::string client_name_;
  std::array<uint8_t, 20> peer_id_{};
  asio::io_context io_;
  tcp::acceptor acceptor_;
  asio::ip::udp::socket udp_;
  std::array<char, 1500> datagram_{};
  asio::ip::udp::endpoint sender_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  uint16_t port_ = 0;
  uint64_t next_key_ = 1;
  absl::flat_hash_map<Key, std::unique_ptr<ContentSwarm>> swarms_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_SESSION_H_
