// ut_metadata (BEP 9) for one swarm, sans-I/O: which pieces of the info dict to
// ask a peer for, assembling the pieces peers send into the dict, checked
// against the swarm's info-hashes, and the answer to a peer's request. The
// swarm does the sending, dropping and banning that the results call for.
//
//   MetadataExchange x(hashes, /*max_size=*/32 << 20);
//   auto wanted = x.Wanted(*ext.metadata_size);     // INVALID_ARGUMENT: drop
//   ... for each data message m from a peer:
//   auto dict = x.OnData(m, *ext.metadata_size);
//   // INVALID_ARGUMENT: drop it; DATA_LOSS: ban it (the dict starts over);
//   // nullopt: more to come; a string: the verified info dict.
#ifndef SHOAL_NODE_METADATA_EXCHANGE_H_
#define SHOAL_NODE_METADATA_EXCHANGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chunk/info_hash.h"
#include "wire/extension.h"

namespace shoal::node {

class MetadataExchange {
 public:
  MetadataExchange(chunk::InfoHashes hashes, int64_t max_size)
      : hashes_(std::move(hashes)), max_size_(max_size) {}

  // The pieces to ask for of a peer whose extension handshake says the dict
  // has `size` bytes: those not received yet. INVALID_ARGUMENT if `size` is
  // not in (0, max_size].
  absl::StatusOr<std::vector<uint32_t>> Wanted(int64_t size);

  // A data message from a peer whose extension handshake said `announced`
  // bytes. INVALID_ARGUMENT: its total or its length is wrong, or the dict
  // was never asked for at that size; DATA_LOSS: it completed a dict that does
  // not hash to the info-hash (every piece is dropped: ask again); nullopt:
  // pieces are missing; else the dict, whose hashes match.
  absl::StatusOr<std::optional<std::string>> OnData(
      const wire::MetadataMessage& m, int64_t announced);

  // The answer to a request for piece `piece`: the data of `info_dict` (the
  // dict's bytes, or null if not known here), or a reject.
  static wire::MetadataMessage Answer(const std::string* info_dict,
                                      uint32_t piece);

 private:
  const chunk::InfoHashes hashes_;
  const int64_t max_size_;
  int64_t size_ = 0;
  std::vector<std::string> pieces_;  // empty string: not received
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_METADATA_EXCHANGE_H_
