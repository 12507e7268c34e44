// The running node: its data directory, chunk store, hashing/disk pool,
// identity and peer sockets.
//
//   SHOAL_ASSIGN_OR_RETURN(auto node, Node::Start(options));
//   ... serve the API ...
//   node.reset();  // stops cleanly
#ifndef SHOAL_NODE_NODE_H_
#define SHOAL_NODE_NODE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/thread_pool.h"
#include "node/options.h"
#include "node/path_roots.h"
#include "node/session.h"
#include "store/chunk_store.h"

namespace shoal::node {

inline constexpr char kVersion[] = "0.1.0";

// Thread-safe: accessors may be called from any thread (the API's handlers
// among them).
class Node {
 public:
  // Locks the data directory, opens the store, loads or creates the node's
  // identity, binds the peer port (TCP and UDP) and starts the network thread.
  // UNAVAILABLE, with a one-line reason, if another shoald holds the data
  // directory or the port is taken.
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);
  // Stops the network thread, drains the pool, closes the store and unlocks the
  // data directory.
  ~Node();

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const NodeOptions& options() const { return options_; }
  store::ChunkStore& store() { return *store_; }
  ThreadPool& pool() { return *pool_; }
  // Hex of the node's Ed25519 public key.
  const std::string& node_id() const { return node_id_; }
  // The peer address as bound (the real port when 0 was asked for).
  // The peer addresses as bound, the primary (first) first.
  const HostPort& listen_address() const { return bound_listen_.front(); }
  const std::vector<HostPort>& listen_addresses() const {
    return bound_listen_;
  }
  absl::Duration uptime() const { return absl::Now() - started_; }
  // The peer side: swarms and connections.
  Session& session() { return *session_; }
  // Removes `id` from the store (a directory with the files nothing else
  // holds) and stops serving and providing it, and those files. Errors as
  // ChunkStore::Remove.
  absl::Status RemoveContent(const chunk::ContentId& id);
  // Where API callers may name files (add by path, torrent save paths).
  const PathRoots& path_roots() const { return path_roots_; }
  // Where adds of unknown length spool their bytes.
  std::filesystem::path spool_dir() const { return options_.data_dir / "tmp"; }

 private:
  explicit Node(NodeOptions options);
  absl::Status Init();

  const NodeOptions options_;
  const PathRoots path_roots_{options_.path_roots};
  const absl::Time started_ = absl::Now();
  int lock_fd_ = -1;
  std::unique_ptr<store::ChunkStore> store_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Session> session_;
  std::string node_id_;
  std::vector<HostPort> bound_listen_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_NODE_H_
