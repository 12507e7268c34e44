#include "node/metadata_exchange.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace shoal::node {

absl::StatusOr<std::vector<uint32_t>> MetadataExchange::Wanted(int64_t size) {
  if (size <= 0 || size > max_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata size out of range: ", size));
  }
  const uint32_t n = static_cast<uint32_t>(
      (size + wire::kMetadataPieceSize - 1) / wire::kMetadataPieceSize);
  if (size != size_ || pieces_.size() != n) {
    size_ = size;
    pieces_.assign(n, std::string());
  }
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < n; ++i)
    if (pieces_[i].empty()) out.push_back(i);
  return out;
}

absl::StatusOr<std::optional<std::string>> MetadataExchange::OnData(
    const wire::MetadataMessage& m, int64_t announced) {
  const uint64_t total = static_cast<uint64_t>(m.total_size.value_or(-1));
  if (!m.total_size || *m.total_size != announced || announced != size_ ||
      m.piece >= pieces_.size()) {
    return absl::InvalidArgumentError(
        "metadata piece of a size nobody announced");
  }
  const uint64_t off = uint64_t{m.piece} * wire::kMetadataPieceSize;
  const uint64_t want = std::min<uint64_t>(wire::kMetadataPieceSize,
                                           total - std::min(total, off));
  if (m.data.size() != want)
    return absl::InvalidArgumentError("metadata piece of the wrong size");
  pieces_[m.piece] = std::string(m.data);
  for (const std::string& p : pieces_)
    if (p.empty()) return std::nullopt;
  std::string dict;
  dict.reserve(total);
  for (const std::string& p : pieces_) dict += p;
  pieces_.assign(pieces_.size(), std::string());
  const bool v1_ok = !hashes_.v1 || chunk::InfoHashV1::Of(dict) == *hashes_.v1;
  const bool v2_ok = !hashes_.v2 || chunk::InfoHashV2::Of(dict) == *hashes_.v2;
  if (!v1_ok || !v2_ok)
    return absl::DataLossError("metadata does not hash to the info-hash");
  pieces_.clear();
  size_ = 0;
  return dict;
}

wire::MetadataMessage MetadataExchange::Answer(const std::string* info_dict,
                                               uint32_t piece) {
  wire::MetadataMessage reply{
      wire::MetadataMessageType::kReject, piece, {}, {}};
  const uint64_t off = uint64_t{piece} * wire::kMetadataPieceSize;
  if (info_dict != nullptr && off < info_dict->size()) {
    reply.type = wire::MetadataMessageType::kData;
    reply.total_size = static_cast<int64_t>(info_dict->size());
    reply.data =
        std::string_view(*info_dict).substr(off, wire::kMetadataPieceSize);
  }
  return reply;
}

}  // namespace shoal::node
