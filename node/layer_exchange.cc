#include "node/layer_exchange.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "chunk/merkle.h"
#include "chunk/merkle_hashes.h"
#include "chunk/piece_verifier.h"

namespace shoal::node {

LayerExchange::LayerExchange(std::shared_ptr<const chunk::Metainfo> m,
                             const std::vector<std::string>& known)
    : m_(std::move(m)),
      base_(std::countr_zero(m_->piece_length / chunk::kBlockSize)) {
  for (size_t f = 0; f < m_->files.size(); ++f) {
    if (!m_->files[f].pieces_root) continue;
    const chunk::PieceRange range = chunk::FilePieces(*m_, f);
    const uint32_t pieces = range.end - range.first;
    if (pieces <= 1 || (f < known.size() && !known[f].empty())) continue;
    fetches_.push_back(NewFetch(f, pieces));
  }
}

LayerExchange::Fetch LayerExchange::NewFetch(size_t file,
                                             uint32_t pieces) const {
  Fetch lf;
  lf.file = file;
  lf.pieces = pieces;
  lf.layer.assign(pieces, codec::Sha256Digest{});
  lf.known.assign(pieces, false);
  lf.missing = pieces;
  return lf;
}

std::vector<wire::HashSpec> LayerExchange::Requests() const {
  std::vector<wire::HashSpec> out;
  for (const Fetch& lf : fetches_) {
    const chunk::FileEntry& file = m_->files[lf.file];
    const uint64_t leaves =
        chunk::NextPowerOfTwo(chunk::NumBlocks(file.length));
    const int height = std::countr_zero(leaves);
    const uint64_t width = leaves >> base_;
    const uint32_t count =
        static_cast<uint32_t>(std::min<uint64_t>(width, kHashesPerRequest));
    for (uint64_t index = 0; index < lf.pieces; index += count) {
      const uint64_t end = std::min<uint64_t>(index + count, lf.pieces);
      bool need = false;
      for (uint64_t i = index; i < end && !need; ++i) need = !lf.known[i];
      if (!need) continue;
      wire::HashSpec spec;
      spec.pieces_root = *file.pieces_root;
      spec.base_layer = static_cast<uint32_t>(base_);
      spec.index = static_cast<uint32_t>(index);
      spec.length = count;
      spec.proof_layers = static_cast<uint32_t>(height - base_ - 1);
      out.push_back(spec);
    }
  }
  return out;
}

absl::StatusOr<std::optional<std::pair<size_t, std::string>>>
LayerExchange::OnHashes(const wire::HashSpec& spec, std::string_view hashes) {
  if (static_cast<int>(spec.base_layer) != base_) return std::nullopt;
  auto lf = std::find_if(fetches_.begin(), fetches_.end(), [&](const Fetch& f) {
    return *m_->files[f.file].pieces_root == spec.pieces_root;
  });
  if (lf == fetches_.end()) return std::nullopt;
  const chunk::FileEntry& file = m_->files[lf->file];
  const uint64_t leaves = chunk::NextPowerOfTwo(chunk::NumBlocks(file.length));
  const std::vector<codec::Sha256Digest> digests = codec::SplitDigests(hashes);
  const chunk::HashRange r{spec.base_layer, spec.index, spec.length,
                           spec.proof_layers};
  auto ok = chunk::VerifyHashes(*file.pieces_root, leaves, r, digests);
  if (!ok.ok()) return ok.status();
  for (uint32_t k = 0; k < r.count; ++k) {
    const uint64_t i = uint64_t{r.index} + k;
    if (i < lf->pieces && !lf->known[i]) {
      lf->layer[i] = (*ok)[k];
      lf->known[i] = true;
      --lf->missing;
    }
  }
  if (lf->missing > 0) return std::nullopt;
  std::string bytes;
  bytes.reserve(lf->layer.size() * 32);
  for (const auto& h : lf->layer)
    bytes.append(reinterpret_cast<const char*>(h.data()), 32);
  const size_t f = lf->file;
  fetches_.erase(lf);
  return std::make_optional(std::make_pair(f, std::move(bytes)));
}

void LayerExchange::Refetch(size_t file) {
  const chunk::PieceRange range = chunk::FilePieces(*m_, file);
  fetches_.push_back(NewFetch(file, range.end - range.first));
}

}  // namespace shoal::node
