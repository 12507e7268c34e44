// The v2 piece layers a torrent's metadata lacks (a magnet's info dict carries
// none), fetched from peers with hash requests (BEP 52), sans-I/O: which
// hashes to ask for, and checking each answer against its file's pieces root.
// The swarm sends the requests and drops or bans the peers the results name.
//
//   LayerExchange x(metainfo, known_layers);
//   for (const wire::HashSpec& s : x.Requests()) send(wire::HashRequest{s});
//   auto layer = x.OnHashes(answer.spec, answer.hashes);
//   // DATA_LOSS: the proof fails (ban); INVALID_ARGUMENT: drop;
//   // a (file, layer) pair: that file's layer is complete.
#ifndef SHOAL_NODE_LAYER_EXCHANGE_H_
#define SHOAL_NODE_LAYER_EXCHANGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/metainfo.h"
#include "codec/sha.h"
#include "wire/message.h"

namespace shoal::node {

class LayerExchange {
 public:
  // Hashes asked for in one request, at most.
  static constexpr uint32_t kHashesPerRequest = 512;

  // Fetches the layers of the files of `m` that have more than one piece and
  // no layer in `known` (per file; empty where unknown).
  LayerExchange(std::shared_ptr<const chunk::Metainfo> m,
                const std::vector<std::string>& known);

  // Every layer is known.
  bool done() const { return fetches_.empty(); }
  size_t files_missing() const { return fetches_.size(); }

  // Requests covering every piece hash not known yet.
  std::vector<wire::HashSpec> Requests() const;

  // An answer to a request for piece-layer hashes. DATA_LOSS if its proof
  // does not lead to the file's pieces root; INVALID_ARGUMENT if malformed.
  // nullopt if it completes no layer (or answers nothing asked); else the
  // file's index and its layer (32 bytes a piece), which is no longer
  // fetched.
  absl::StatusOr<std::optional<std::pair<size_t, std::string>>> OnHashes(
      const wire::HashSpec& spec, std::string_view hashes);

  // A completed layer was refused (by the verifier): fetch it again.
  void Refetch(size_t file);

 private:
  struct Fetch {
    size_t file = 0;
    uint32_t pieces = 0;
    std::vector<codec::Sha256Digest> layer;
    std::vector<bool> known;
    uint32_t missing = 0;
  };
  Fetch NewFetch(size_t file, uint32_t pieces) const;

  std::shared_ptr<const chunk::Metainfo> m_;
  int base_ = 0;  // the piece layer's height above the 16 KiB blocks
  std::vector<Fetch> fetches_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_LAYER_EXCHANGE_H_
