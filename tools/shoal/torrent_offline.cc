#include "tools/shoal/torrent_offline.h"

#include <cstdint>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/hex.h"
#include "chunk/magnet.h"
#include "chunk/metainfo.h"
#include "chunk/torrent_creator.h"

namespace shoal::cli {
namespace {

using chunk::Metainfo;
using chunk::TorrentVersion;

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "shoal: " << message << "\n";
  throw CLI::RuntimeError(1);
}

[[noreturn]] void Fail(const absl::Status& status) {
  Fail(std::string(status.message()));
}

std::string VersionName(TorrentVersion v) {
  switch (v) {
    case TorrentVersion::kV1:
      return "v1";
    case TorrentVersion::kV2:
      return "v2";
    case TorrentVersion::kHybrid:
      return "hybrid";
  }
  return "?";
}

std::string Dump(const nlohmann::json& j) {
  // Torrent strings need not be UTF-8; replace what is not.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct CreateOptions {
  std::string path;
  std::string out;
  bool v1 = false, v2 = false, hybrid = false;
  uint64_t piece_size = 0;
  std::vector<std::string> trackers;
  std::vector<std::string> web_seeds;
  bool is_private = false;
  std::string comment;
  std::string created_by = "Shoal 0.1.0";
  bool no_creation_date = false;
  int threads = 0;
};

void RunCreate(const CreateOptions& o) {
  chunk::TorrentCreatorOptions c;
  c.source = o.path;
  c.version = o.v1   ? TorrentVersion::kV1
              : o.v2 ? TorrentVersion::kV2
                     : TorrentVersion::kHybrid;
  if (o.piece_size > (uint64_t{1} << 31)) {
    Fail("--piece-size " + std::to_string(o.piece_size) + " is too large");
  }
  c.piece_length = static_cast<uint32_t>(o.piece_size);
  c.trackers = o.trackers;
  c.web_seeds = o.web_seeds;
  c.is_private = o.is_private;
  c.comment = o.comment;
  c.created_by = o.created_by;
  if (!o.no_creation_date)
    c.creation_date = static_cast<int64_t>(std::time(nullptr));
  c.num_threads = o.threads;
  absl::StatusOr<std::string> torrent = chunk::CreateTorrent(c);
  if (!torrent.ok()) Fail(torrent.status());
  // Read it back: the ID comes from the same parser everything else uses.
  absl::StatusOr<Metainfo> m = chunk::ParseMetainfo(*torrent);
  if (!m.ok()) Fail("created an unreadable torrent: " + m.status().ToString());
  std::ofstream out(o.out, std::ios::binary | std::ios::trunc);
  out.write(torrent->data(), static_cast<std::streamsize>(torrent->size()));
  out.close();
  if (!out) Fail("cannot write " + o.out);
  std::cout << m->info_hashes.BestHex() << "\n";
}

nlohmann::json MetainfoJson(const Metainfo& m) {
  nlohmann::json j;
  j["name"] = m.name;
  j["info_hash_v1"] =
      m.info_hashes.v1 ? nlohmann::json(m.info_hashes.v1->Hex()) : nullptr;
  j["info_hash_v2"] =
      m.info_hashes.v2 ? nlohmann::json(m.info_hashes.v2->Hex()) : nullptr;
  j["version"] = VersionName(m.version());
  j["total_size"] = m.total_size;
  j["num_files"] = m.files.size();
  j["num_pad_files"] = m.files.size() - m.num_real_files();
  j["piece_length"] = m.piece_length;
  j["num_pieces"] = m.num_pieces;
  j["private"] = m.is_private;
  j["comment"] = m.comment;
  j["created_by"] = m.created_by;
  j["creation_date"] =
      m.creation_date ? nlohmann::json(*m.creation_date) : nullptr;
  nlohmann::json files = nlohmann::json::array();
  for (size_t i = 0; i < m.files.size(); ++i) {
    const chunk::FileEntry& f = m.files[i];
    nlohmann::json e;
    e["path"] = f.path;
    e["length"] = f.length;
    e["offset"] = f.offset;
    if (f.pad_file) e["pad"] = true;
    if (f.executable) e["executable"] = true;
    if (f.hidden) e["hidden"] = true;
    if (f.symlink) e["symlink_target"] = f.symlink_target;
    if (f.pieces_root) {
      e["pieces_root"] = HexEncode(std::span<const uint8_t>(*f.pieces_root));
    }
    files.push_back(std::move(e));
  }
  j["files"] = std::move(files);
  nlohmann::json trackers = nlohmann::json::array();
  for (const auto& t : m.trackers) {
    trackers.push_back({{"url", t.url}, {"tier", t.tier}});
  }
  j["trackers"] = std::move(trackers);
  j["url_seeds"] = m.url_seeds;
  j["http_seeds"] = m.http_seeds;
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : m.nodes)
    nodes.push_back({{"host", n.host}, {"port", n.port}});
  j["nodes"] = std::move(nodes);
  j["magnet"] = chunk::ToMagnetUri(chunk::MagnetFromMetainfo(m));
  j["warnings"] = m.warnings;
  return j;
}

void PrintMetainfo(const Metainfo& m) {
  std::cout << "name:          " << m.name << "\n"
            << "version:       " << VersionName(m.version()) << "\n"
            << "info-hash v1:  "
            << (m.info_hashes.v1 ? m.info_hashes.v1->Hex() : "-") << "\n"
            << "info-hash v2:  "
            << (m.info_hashes.v2 ? m.info_hashes.v2->Hex() : "-") << "\n"
            << "total size:    " << m.total_size << " bytes\n"
            << "pieces:        " << m.num_pieces << " x " << m.piece_length
            << " bytes\n"
            << "files:         " << m.num_real_files() << " (+"
            << m.files.size() - m.num_real_files() << " pad)\n"
            << "private:       " << (m.is_private ? "yes" : "no") << "\n";
  if (m.creation_date)
    std::cout << "created:       " << *m.creation_date << "\n";
  if (!m.created_by.empty())
    std::cout << "created by:    " << m.created_by << "\n";
  if (!m.comment.empty()) std::cout << "comment:       " << m.comment << "\n";
  for (const auto& t : m.trackers) {
    std::cout << "tracker:       [" << t.tier << "] " << t.url << "\n";
  }
  for (const auto& w : m.url_seeds) std::cout << "web seed:      " << w << "\n";
  for (const auto& w : m.http_seeds)
    std::cout << "http seed:     " << w << "\n";
  for (const auto& w : m.warnings) std::cout << "warning:       " << w << "\n";
  constexpr size_t kMaxListed = 100;
  size_t listed = 0;
  for (const auto& f : m.files) {
    if (f.pad_file) continue;
    if (listed++ == kMaxListed) {
      std::cout << "  ... and " << m.num_real_files() - kMaxListed
                << " more files\n";
      break;
    }
    std::cout << "  " << f.length << "\t" << f.path;
    if (f.symlink) std::cout << " -> " << f.symlink_target;
    std::cout << "\n";
  }
}

void InspectMagnet(const std::string& uri, bool json) {
  absl::StatusOr<chunk::MagnetUri> m = chunk::ParseMagnetUri(uri);
  if (!m.ok()) Fail(m.status());
  if (json) {
    nlohmann::json j;
    j["name"] = m->display_name.empty() ? nlohmann::json(nullptr)
                                        : nlohmann::json(m->display_name);
    j["info_hash_v1"] =
        m->info_hashes.v1 ? nlohmann::json(m->info_hashes.v1->Hex()) : nullptr;
    j["info_hash_v2"] =
        m->info_hashes.v2 ? nlohmann::json(m->info_hashes.v2->Hex()) : nullptr;
    j["version"] = m->info_hashes.v1 && m->info_hashes.v2 ? "hybrid"
                   : m->info_hashes.v2                    ? "v2"
                                                          : "v1";
    // A magnet carries no metadata: sizes are unknown until it is fetched.
    j["total_size"] = nullptr;
    j["num_files"] = nullptr;
    j["piece_length"] = nullptr;
    j["num_pieces"] = nullptr;
    j["trackers"] = m->trackers;
    j["web_seeds"] = m->web_seeds;
    j["peers"] = m->peers;
    nlohmann::json so = nlohmann::json::array();
    for (const auto& r : m->select_only) so.push_back({r.first, r.last});
    j["select_only"] = std::move(so);
    j["magnet"] = chunk::ToMagnetUri(*m);
    std::cout << Dump(j) << "\n";
    return;
  }
  std::cout << "name:          "
            << (m->display_name.empty() ? "-" : m->display_name) << "\n"
            << "info-hash v1:  "
            << (m->info_hashes.v1 ? m->info_hashes.v1->Hex() : "-") << "\n"
            << "info-hash v2:  "
            << (m->info_hashes.v2 ? m->info_hashes.v2->Hex() : "-") << "\n";
  for (const auto& t : m->trackers) std::cout << "tracker:       " << t << "\n";
  for (const auto& w : m->web_seeds)
    std::cout << "web seed:      " << w << "\n";
  for (const auto& p : m->peers) std::cout << "peer:          " << p << "\n";
}

void RunInspect(const std::string& target, bool json) {
  if (target.rfind("magnet:", 0) == 0) return InspectMagnet(target, json);
  const chunk::MetainfoLimits limits;
  std::ifstream in(target, std::ios::binary);
  if (!in) Fail("cannot open " + target);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) Fail("cannot read " + target);
  if (static_cast<uint64_t>(size) > limits.max_size) {
    Fail(target + " is larger than the " +
         std::to_string(limits.max_size >> 20) +
         " MiB limit for .torrent files");
  }
  in.seekg(0);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), size);
  if (!in) Fail("cannot read " + target);
  absl::StatusOr<Metainfo> m = chunk::ParseMetainfo(bytes, limits);
  if (!m.ok()) Fail(target + ": " + std::string(m.status().message()));
  if (json) {
    std::cout << Dump(MetainfoJson(*m)) << "\n";
  } else {
    PrintMetainfo(*m);
  }
}

}  // namespace

void AddTorrentOfflineCommands(CLI::App& torrent) {
  // The options live as long as the callbacks that read them; the App owns
  // the callbacks, so shared ownership is the simplest correct lifetime.
  auto create_opts = std::make_shared<CreateOptions>();
  CLI::App* create = torrent.add_subcommand(
      "create", "create a .torrent from a file or directory (no node needed)");
  create->add_option("path", create_opts->path, "file or directory to share")
      ->required();
  create->add_option("-o,--output", create_opts->out, "the .torrent to write")
      ->required();
  auto* v1 = create->add_flag("--v1", create_opts->v1, "BitTorrent v1 only");
  auto* v2 = create->add_flag("--v2", create_opts->v2, "BitTorrent v2 only");
  auto* hybrid = create->add_flag("--hybrid", create_opts->hybrid,
                                  "v1 and v2 in one torrent (the default)");
  v1->excludes(v2)->excludes(hybrid);
  v2->excludes(hybrid);
  create->add_option("--piece-size", create_opts->piece_size,
                     "piece size in bytes, a power of two >= 16384 "
                     "(default: automatic)");
  create->add_option("--tracker", create_opts->trackers,
                     "tracker URL (repeatable; one tier each)");
  create->add_option("--web-seed", create_opts->web_seeds,
                     "web seed URL, BEP 19 (repeatable)");
  create->add_flag("--private", create_opts->is_private,
                   "set the private flag (BEP 27)");
  create->add_option("--comment", create_opts->comment, "comment");
  create->add_option("--created-by", create_opts->created_by,
                     "the 'created by' field");
  create->add_flag("--no-creation-date", create_opts->no_creation_date,
                   "omit the creation date (reproducible output)");
  create->add_option("--threads", create_opts->threads,
                     "hashing threads (default: one per core)");
  create->callback([create_opts] { RunCreate(*create_opts); });

  auto target = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* inspect = torrent.add_subcommand(
      "inspect", "describe a .torrent file or magnet URI (no node needed)");
  inspect->add_option("target", *target, ".torrent file or magnet URI")
      ->required();
  inspect->add_flag("--json", *json, "print one JSON object");
  inspect->callback([target, json] { RunInspect(*target, *json); });
}

}  // namespace shoal::cli
