// Runs every .torrent of the shared corpus (libtorrent's own test torrents)
// through ParseMetainfo and compares with what libtorrent 2.0.8 made of it
// (testdata/torrents-expected.json).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "chunk/metainfo.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace shoal::chunk {
namespace {

// Torrents libtorrent rejects that Shoal deliberately accepts, and why.
// (Empty: Shoal currently rejects every torrent libtorrent rejects.)
const std::map<std::string, std::string>& DeliberatelyAccepted() {
  static const auto* m = new std::map<std::string, std::string>{};
  return *m;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path SharedDir() {
  const char* d = std::getenv("SHOAL_SHARED_DIR");
  return d ? std::filesystem::path(d) : std::filesystem::path();
}

// Each torrent libtorrent accepts parses with the same info-hashes, total
// size, file count, piece length and piece count; each one it rejects is
// rejected with a message (or listed in DeliberatelyAccepted()).
TEST(MetainfoCorpusTest, MatchesLibtorrent) {
  const std::filesystem::path shared = SharedDir();
  const auto expected_path = shared / "testdata" / "torrents-expected.json";
  if (shared.empty() || !std::filesystem::exists(expected_path)) {
    GTEST_SKIP() << "SHOAL_SHARED_DIR not set or has no "
                    "testdata/torrents-expected.json; corpus test skipped";
  }
  nlohmann::json expected = nlohmann::json::parse(ReadFile(expected_path));
  int accepted = 0, rejected = 0, deliberate = 0;
  for (auto& [name, want] : expected.items()) {
    SCOPED_TRACE(name);
    const std::string bytes = ReadFile(shared / "testdata" / "torrents" / name);
    ASSERT_FALSE(bytes.empty()) << "cannot read " << name;
    absl::StatusOr<Metainfo> m = ParseMetainfo(bytes);
    if (!want["valid"].get<bool>()) {
      if (DeliberatelyAccepted().count(name)) {
        ++deliberate;
        continue;
      }
      if (m.ok()) {
        ADD_FAILURE() << name << " is rejected by libtorrent (" << want["error"]
                      << ") but Shoal accepted it";
        continue;
      }
      std::cout << "  " << name << ": " << m.status().message() << "\n";
      EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_GT(m.status().message().size(), 10u);
      ++rejected;
      continue;
    }
    if (!m.ok()) {
      ADD_FAILURE() << name << " is accepted by libtorrent but Shoal says "
                    << m.status().ToString();
      continue;
    }
    if (want["v1"].is_null()) {
      EXPECT_FALSE(m->info_hashes.v1.has_value());
    } else {
      EXPECT_EQ(m->info_hashes.v1 ? m->info_hashes.v1->Hex() : "none",
                want["v1"].get<std::string>());
    }
    if (want["v2"].is_null()) {
      EXPECT_FALSE(m->info_hashes.v2.has_value());
    } else {
      EXPECT_EQ(m->info_hashes.v2 ? m->info_hashes.v2->Hex() : "none",
                want["v2"].get<std::string>());
    }
    EXPECT_EQ(m->total_size, want["total_size"].get<uint64_t>());
    EXPECT_EQ(m->files.size(), want["num_files"].get<size_t>());
    EXPECT_EQ(m->piece_length, want["piece_length"].get<uint32_t>());
    EXPECT_EQ(m->num_pieces, want["num_pieces"].get<uint32_t>());
    ++accepted;
  }
  std::cout << "corpus: " << accepted << " accepted and " << rejected
            << " rejected as libtorrent does; " << deliberate
            << " deliberately accepted\n";
}

}  // namespace
}  // namespace shoal::chunk
