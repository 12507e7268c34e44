// libFuzzer target: .torrent parsing (ParseMetainfo) on arbitrary bytes, and
// the same bytes as a bare info dict. Checks that accepted torrents are
// self-consistent and that no path can leave the save directory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chunk/magnet.h"
#include "chunk/metainfo.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckMetainfo(const shoal::chunk::Metainfo& m) {
  uint64_t offset = 0;
  for (const auto& f : m.files) {
    Check(f.offset == offset);
    offset += f.length;
    Check(!f.path.empty() && f.path.front() != '/');
    Check(f.path.find("\\") == std::string::npos);
    // No element may be "." or ".." or empty.
    size_t start = 0;
    while (start <= f.path.size()) {
      size_t end = f.path.find('/', start);
      if (end == std::string::npos) end = f.path.size();
      std::string_view e(f.path.data() + start, end - start);
      Check(!e.empty() && e != "." && e != "..");
      start = end + 1;
    }
  }
  Check(offset == m.total_size);
  Check(m.total_size > 0);
  Check(m.num_pieces == (m.total_size + m.piece_length - 1) / m.piece_length);
  Check(m.piece_layers.size() == m.files.size());
  Check(!m.info_hashes.empty());
  if (m.info_hashes.v1)
    Check(m.v1_piece_hashes().size() == 20ull * m.num_pieces);
  // The magnet of any accepted torrent must parse back.
  auto magnet = shoal::chunk::ParseMagnetUri(
      shoal::chunk::ToMagnetUri(shoal::chunk::MagnetFromMetainfo(m)));
  Check(magnet.ok() && magnet->info_hashes == m.info_hashes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  shoal::chunk::MetainfoLimits limits;
  limits.max_pieces = 1 << 16;  // keep piece-layer hashing cheap
  auto m = shoal::chunk::ParseMetainfo(in, limits);
  if (m.ok()) CheckMetainfo(*m);
  auto info = shoal::chunk::ParseInfoDict(in, limits);
  if (info.ok()) CheckMetainfo(*info);
  return 0;
}
