// `shoal torrent ...` commands that talk to shoald, and `shoal watch`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/shoal/commands.h"
#include "tools/shoal/event_format.h"
#include "tools/shoal/progress.h"

namespace shoal::cli {
namespace {

// A file named by its index or by its path as `torrent files` shows it.
absl::StatusOr<uint32_t> FileIndex(Client& c, const std::string& id,
                                   const std::string& file) {
  uint32_t index = 0;
  if (absl::SimpleAtoi(file, &index)) return index;
  v1::TorrentRequest req;
  req.set_id(id);
  grpc::ClientContext ctx;
  v1::TorrentFilesResponse resp;
  absl::Status s = c.Check(c.torrents().Files(&ctx, req, &resp));
  if (!s.ok()) return s;
  for (const auto& f : resp.files())
    if (f.path() == file) return f.index();
  return absl::NotFoundError(
      absl::StrCat("the torrent has no file '", file, "'"));
}

// "1" for each verified piece, "0" for the others, piece 0 first.
std::string PieceString(const v1::TorrentStatus& s) {
  std::string out(s.num_pieces(), '0');
  for (uint32_t i = 0; i < s.num_pieces() && i / 8 < s.pieces().size(); ++i) {
    if (static_cast<uint8_t>(s.pieces()[i / 8]) & (0x80 >> (i % 8)))
      out[i] = '1';
  }
  return out;
}

nlohmann::json StatusJson(const v1::TorrentStatus& s) {
  nlohmann::json trackers = nlohmann::json::array();
  for (const auto& t : s.trackers())
    trackers.push_back({{"url", t.url()}, {"error", t.error()}});
  nlohmann::json web_seeds = nlohmann::json::array();
  for (const auto& w : s.web_seeds())
    web_seeds.push_back({{"url", w.url()},
                         {"state", w.state()},
                         {"error", w.error()},
                         {"downloaded", w.downloaded()}});
  return {
      {"id", s.id()},
      {"info_hash_v1", s.info_hash_v1().empty()
                           ? nlohmann::json(nullptr)
                           : nlohmann::json(s.info_hash_v1())},
      {"info_hash_v2", s.info_hash_v2().empty()
                           ? nlohmann::json(nullptr)
                           : nlohmann::json(s.info_hash_v2())},
      {"name", s.name()},
      {"state", s.state()},
      {"error", s.error()},
      {"save_path", s.save_path()},
      {"in_store", s.in_store()},
      {"sequential", s.sequential()},
      {"progress", s.progress()},
      {"total_size", s.total_size()},
      {"wanted_size", s.wanted_size()},
      {"bytes_done", s.bytes_done()},
      {"downloaded", s.downloaded()},
      {"uploaded", s.uploaded()},
      {"download_rate", s.download_rate()},
      {"upload_rate", s.upload_rate()},
      {"num_peers", s.num_peers()},
      {"num_seeds", s.num_seeds()},
      {"known_peers", s.known_peers()},
      {"num_pieces", s.num_pieces()},
      {"pieces_done", s.pieces_done()},
      {"piece_length", s.piece_length()},
      {"added", s.added().seconds()},
      {"trackers", trackers},
      {"tracker_seeders", s.has_tracker_seeders()
                              ? nlohmann::json(s.tracker_seeders())
                              : nlohmann::json(nullptr)},
      {"tracker_leechers", s.has_tracker_leechers()
                               ? nlohmann::json(s.tracker_leechers())
                               : nlohmann::json(nullptr)},
      {"tracker_completed", s.has_tracker_completed()
                                ? nlohmann::json(s.tracker_completed())
                                : nlohmann::json(nullptr)},
      {"pieces", PieceString(s)},
      {"web_seeds", web_seeds},
      {"share_ratio", s.share_ratio()},
      {"seeding_seconds", s.seeding_seconds()},
      {"stopped_by", s.stopped_by()},
      {"super_seeding", s.super_seeding()},
      {"eta_seconds", s.has_eta_seconds() ? nlohmann::json(s.eta_seconds())
                                          : nlohmann::json(nullptr)},
  };
}

std::string Rate(double bytes_per_s) {
  return absl::StrCat(HumanBytes(static_cast<uint64_t>(bytes_per_s)), "/s");
}

void PrintStatus(const v1::TorrentStatus& s) {
  std::printf("id            %s\n", s.id().c_str());
  std::printf("name          %s\n", s.name().c_str());
  std::printf(
      "state         %s%s\n", s.state().c_str(),
      s.error().empty() ? "" : absl::StrCat(" (", s.error(), ")").c_str());
  std::printf("progress      %.1f%% (%s of %s)\n", s.progress() * 100,
              HumanBytes(s.bytes_done()).c_str(),
              HumanBytes(s.wanted_size()).c_str());
  std::printf("pieces        %u of %u, %s each\n", s.pieces_done(),
              s.num_pieces(), HumanBytes(s.piece_length()).c_str());
  std::printf("peers         %u (%u seeds), %u known\n", s.num_peers(),
              s.num_seeds(), s.known_peers());
  std::printf("down / up     %s / %s\n", Rate(s.download_rate()).c_str(),
              Rate(s.upload_rate()).c_str());
  if (s.has_eta_seconds())
    std::printf("eta           %s\n", HumanDuration(s.eta_seconds()).c_str());
  std::printf("transferred   %s down, %s up\n",
              HumanBytes(s.downloaded()).c_str(),
              HumanBytes(s.uploaded()).c_str());
  std::printf("save path     %s\n",
              s.in_store() ? "(in the chunk store)" : s.save_path().c_str());
  std::printf("sequential    %s\n", s.sequential() ? "yes" : "no");
  if (s.super_seeding()) std::printf("super-seeding on\n");
  std::printf("share ratio   %.2f, seeded %llu s%s\n", s.share_ratio(),
              static_cast<unsigned long long>(s.seeding_seconds()),
              s.stopped_by().empty()
                  ? ""
                  : absl::StrCat(" (stopped: ", s.stopped_by(), ")").c_str());
  for (const auto& t : s.trackers()) {
    std::printf(
        "tracker       %s%s\n", t.url().c_str(),
        t.error().empty() ? "" : absl::StrCat(" (", t.error(), ")").c_str());
  }
  if (s.has_tracker_seeders() || s.has_tracker_leechers()) {
    std::printf(
        "tracker says  %lld seeders, %lld leechers%s\n",
        static_cast<long long>(s.tracker_seeders()),
        static_cast<long long>(s.tracker_leechers()),
        s.has_tracker_completed()
            ? absl::StrCat(", ", s.tracker_completed(), " completed").c_str()
            : "");
  }
  for (const auto& w : s.web_seeds()) {
    std::printf(
        "web seed      %s: %s, %s%s\n", w.url().c_str(), w.state().c_str(),
        HumanBytes(w.downloaded()).c_str(),
        w.error().empty() ? "" : absl::StrCat(" (", w.error(), ")").c_str());
  }
}

absl::Status GetStatus(Client& c, const std::string& id,
                       v1::TorrentStatus* out) {
  grpc::ClientContext ctx;
  v1::TorrentRequest req;
  req.set_id(id);
  return c.Check(c.torrents().GetStatus(&ctx, req, out));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) &&
      !std::filesystem::is_regular_file(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read ", path));
  return ss.str();
}

// A command that takes one torrent ID, calls `rpc` with it and hands the
// answer to `print` (with whether --json was given). Without `print`, the
// command prints nothing and has no --json.
template <typename Resp>
void AddQuery(CLI::App& torrent, Action& action, const std::string& name,
              const std::string& help,
              grpc::Status (v1::TorrentService::Stub::*rpc)(
                  grpc::ClientContext*, const v1::TorrentRequest&, Resp*),
              std::function<void(const Resp&, bool json)> print = nullptr) {
  auto* cmd = torrent.add_subcommand(name, help);
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("ID", *id, "Torrent ID (info-hash hex)")->required();
  if (print) cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      grpc::ClientContext ctx;
      v1::TorrentRequest req;
      req.set_id(*id);
      Resp resp;
      absl::Status s = c.Check((c.torrents().*rpc)(&ctx, req, &resp));
      if (s.ok() && print) print(resp, *json);
      return s;
    };
  });
}

}  // namespace

void AddTorrentCommands(CLI::App& torrent, Action& action) {
  {
    auto* cmd = torrent.add_subcommand(
        "add", "Add a torrent (.torrent file or magnet link); prints its ID");
    struct Args {
      std::string source;
      std::string save_path;
      bool sequential = false;
      bool paused = false;
      bool in_store = false;
      std::vector<std::string> peers;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("FILE|MAGNET", a->source, ".torrent file or magnet link")
        ->required();
    cmd->add_flag("--json", a->json,
                  "Print its status as one JSON object (as status --json)");
    cmd->add_option("--save-path", a->save_path,
                    "Where the files go (default: the node's downloads dir)");
    cmd->add_flag("--sequential", a->sequential, "Download pieces in order");
    cmd->add_flag("--paused", a->paused, "Add without starting");
    cmd->add_flag("--in-store", a->in_store,
                  "Keep the pieces in the node's chunk store instead of files "
                  "(read them with `torrent cat`)")
        ->excludes("--save-path");
    cmd->add_option("--peer", a->peers, "Connect to this peer (HOST:PORT)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        v1::AddTorrentRequest req;
        if (a->source.rfind("magnet:", 0) == 0) {
          req.set_magnet(a->source);
        } else {
          auto bytes = ReadFile(a->source);
          if (!bytes.ok()) return bytes.status();
          req.set_torrent(*std::move(bytes));
        }
        if (!a->save_path.empty()) {
          std::error_code ec;
          auto abs = std::filesystem::absolute(a->save_path, ec);
          if (ec)
            return absl::InvalidArgumentError(
                absl::StrCat("bad save path ", a->save_path));
          req.set_save_path(abs.string());
        }
        req.set_sequential(a->sequential);
        req.set_paused(a->paused);
        req.set_in_store(a->in_store);
        for (const auto& p : a->peers) req.add_peers(p);
        grpc::ClientContext ctx;
        v1::TorrentStatus st;
        absl::Status s = c.Check(c.torrents().Add(&ctx, req, &st));
        if (!s.ok()) return s;
        if (a->json) {
          PrintJson(StatusJson(st));
        } else {
          std::printf("%s\n", st.id().c_str());
        }
        return absl::OkStatus();
      };
    });
  }
  {
    auto* cmd = torrent.add_subcommand(
        "cat", "Write a file of a torrent (from verified pieces) to stdout");
    struct Args {
      std::string id;
      std::string file;
      uint64_t offset = 0;
      std::optional<uint64_t> length;
      std::string out;
      std::optional<uint32_t> timeout;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("ID", a->id, "Torrent ID (info-hash)")->required();
    cmd->add_option("--timeout", a->timeout,
                    "Seconds to wait for a piece not downloaded yet (it is "
                    "fetched first); 0: fail at once; default: the node's "
                    "fetch timeout");
    cmd->add_option("FILE", a->file,
                    "File index or path, as `torrent files` shows them")
        ->required();
    cmd->add_option("--offset", a->offset, "First byte to write")
        ->check(NotNegative);
    cmd->add_option("--length", a->length, "Number of bytes to write")
        ->check(NotNegative);
    cmd->add_option("-o,--output", a->out,
                    "Write to this file instead of stdout");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        auto index = FileIndex(c, a->id, a->file);
        if (!index.ok()) return index.status();
        auto read = [&](FILE* out) {
          v1::ReadTorrentFileRequest req;
          req.set_id(a->id);
          req.set_file_index(*index);
          req.set_offset(a->offset);
          if (a->length) req.set_length(*a->length);
          if (a->timeout) req.set_wait_seconds(*a->timeout);
          grpc::ClientContext ctx;
          auto reader = c.torrents().ReadFile(&ctx, req);
          return CopyReadStream(c, ctx, *reader, a->offset, a->length, out,
                                [](uint64_t, uint64_t, bool) {});
        };
        if (!a->out.empty()) return WriteFileAtomically(a->out, read);
        absl::Status s = read(stdout);
        if (std::fflush(stdout) != 0 && s.ok())
          return absl::InternalError("writing standard output failed");
        return s;
      };
    });
  }
  {
    auto* cmd = torrent.add_subcommand("ls", "List the node's torrents");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        grpc::ClientContext ctx;
        v1::ListTorrentsResponse resp;
        absl::Status s =
            c.Check(c.torrents().List(&ctx, v1::ListTorrentsRequest(), &resp));
        if (!s.ok()) return s;
        if (*json) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& t : resp.torrents()) list.push_back(StatusJson(t));
          PrintJson({{"torrents", list}});
          return absl::OkStatus();
        }
        for (const auto& t : resp.torrents()) {
          std::printf("%s  %-11s %5.1f%%  %10s  %3u peers  %s\n",
                      t.id().c_str(), t.state().c_str(), t.progress() * 100,
                      HumanBytes(t.wanted_size()).c_str(), t.num_peers(),
                      t.name().c_str());
        }
        return absl::OkStatus();
      };
    });
  }
  AddQuery<v1::TorrentStatus>(torrent, action, "status", "Describe one torrent",
                              &v1::TorrentService::Stub::GetStatus,
                              [](const v1::TorrentStatus& st, bool json) {
                                if (json) {
                                  PrintJson(StatusJson(st));
                                } else {
                                  PrintStatus(st);
                                }
                              });
  {
    auto* cmd = torrent.add_subcommand(
        "wait", "Wait until every wanted piece is verified");
    auto id = std::make_shared<std::string>();
    auto timeout = std::make_shared<double>(0);
    cmd->add_option("ID", *id, "Torrent ID")->required();
    cmd->add_option("--timeout", *timeout, "Give up after SECONDS (0: never)");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        const auto start = std::chrono::steady_clock::now();
        // On a terminal: the wanted bytes verified, the rate and ETA the
        // node reports, the state and peers.
        Progress bar;
        for (;;) {
          v1::TorrentStatus st;
          absl::Status s = GetStatus(c, *id, &st);
          if (!s.ok()) return s;
          const bool done = st.state() == "seeding";
          bar.Update(
              st.bytes_done(), st.wanted_size(), done, st.download_rate(),
              st.has_eta_seconds() ? std::optional<int64_t>(st.eta_seconds())
                                   : std::nullopt,
              absl::StrFormat("%s, %u peers", st.state(), st.num_peers()));
          if (done) return absl::OkStatus();
          if (st.state() == "error") {
            return absl::AbortedError(
                absl::StrCat("torrent stopped: ", st.error()));
          }
          const double waited = std::chrono::duration<double>(
                                    std::chrono::steady_clock::now() - start)
                                    .count();
          if (*timeout > 0 && waited >= *timeout) {
            return absl::DeadlineExceededError(
                absl::StrFormat("timed out after %.0f s: %s, %.1f%% done",
                                *timeout, st.state(), st.progress() * 100));
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      };
    });
  }
  AddQuery<v1::TorrentStatus>(
      torrent, action, "pause",
      "Stop a torrent's transfers (kept across restarts)",
      &v1::TorrentService::Stub::Pause);
  AddQuery<v1::TorrentStatus>(
      torrent, action, "resume",
      "Resume a paused torrent (it runs when the queue has room)",
      &v1::TorrentService::Stub::Resume);
  AddQuery<v1::TorrentStatus>(torrent, action, "recheck",
                              "Hash the data on disk again",
                              &v1::TorrentService::Stub::Recheck);
  AddQuery<v1::TorrentStatus>(torrent, action, "reannounce",
                              "Announce to the trackers now",
                              &v1::TorrentService::Stub::Reannounce);
  {
    auto* cmd = torrent.add_subcommand("rm", "Remove a torrent");
    auto id = std::make_shared<std::string>();
    auto del = std::make_shared<bool>(false);
    cmd->add_option("ID", *id, "Torrent ID")->required();
    cmd->add_flag("--delete-data", *del, "Also delete its files");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        grpc::ClientContext ctx;
        v1::RemoveTorrentRequest req;
        req.set_id(*id);
        req.set_delete_data(*del);
        v1::RemoveTorrentResponse resp;
        return c.Check(c.torrents().Remove(&ctx, req, &resp));
      };
    });
  }
  AddQuery<v1::TorrentPeersResponse>(
      torrent, action, "peers", "A torrent's connected peers",
      &v1::TorrentService::Stub::Peers,
      [](const v1::TorrentPeersResponse& resp, bool json) {
        if (json) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& p : resp.peers()) {
            list.push_back({{"address", p.address()},
                            {"client", p.client()},
                            {"incoming", p.incoming()},
                            {"seed", p.seed()},
                            {"progress", p.progress()},
                            {"am_choking", p.am_choking()},
                            {"am_interested", p.am_interested()},
                            {"peer_choking", p.peer_choking()},
                            {"peer_interested", p.peer_interested()},
                            {"snubbed", p.snubbed()},
                            {"download_rate", p.download_rate()},
                            {"upload_rate", p.upload_rate()},
                            {"downloaded", p.downloaded()},
                            {"uploaded", p.uploaded()},
                            {"requests", p.requests()},
                            {"transport", p.transport()},
                            {"encrypted", p.encrypted()}});
          }
          PrintJson({{"peers", list}});
          return;
        }
        for (const auto& p : resp.peers()) {
          std::printf("%-22s %-4s%s %5.1f%%  down %10s  up %10s  %s%s\n",
                      p.address().c_str(), p.transport().c_str(),
                      p.encrypted() ? "+e" : "  ", p.progress() * 100,
                      Rate(p.download_rate()).c_str(),
                      Rate(p.upload_rate()).c_str(), p.client().c_str(),
                      p.snubbed() ? " (snubbed)" : "");
        }
      });
  AddQuery<v1::TorrentFilesResponse>(
      torrent, action, "files", "A torrent's files",
      &v1::TorrentService::Stub::Files,
      [](const v1::TorrentFilesResponse& resp, bool json) {
        if (json) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& f : resp.files()) {
            list.push_back({{"index", f.index()},
                            {"path", f.path()},
                            {"size", f.size()},
                            {"priority", f.priority()},
                            {"bytes_done", f.bytes_done()}});
          }
          PrintJson({{"files", list}});
          return;
        }
        for (const auto& f : resp.files()) {
          std::printf("%4u  prio %u  %5.1f%%  %10s  %s\n", f.index(),
                      f.priority(),
                      f.size() ? 100.0 * f.bytes_done() / f.size() : 100.0,
                      HumanBytes(f.size()).c_str(), f.path().c_str());
        }
      });
  {
    auto* cmd = torrent.add_subcommand(
        "prio", "Set file priorities: INDEX=PRIORITY... (0 skips a file, 1-7)");
    auto id = std::make_shared<std::string>();
    auto pairs = std::make_shared<std::vector<std::string>>();
    cmd->add_option("ID", *id, "Torrent ID")->required();
    cmd->add_option("INDEX=PRIORITY", *pairs, "File index and priority")
        ->required()
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        v1::SetFilePrioritiesRequest req;
        req.set_id(*id);
        for (const std::string& p : *pairs) {
          unsigned index = 0, prio = 0;
          char extra = 0;
          if (std::sscanf(p.c_str(), "%u=%u%c", &index, &prio, &extra) != 2 ||
              prio > 7) {
            return absl::InvalidArgumentError(absl::StrCat(
                "expected INDEX=PRIORITY with a priority of 0 to 7, got '", p,
                "'"));
          }
          req.add_file_index(index);
          req.add_file_priority(prio);
        }
        grpc::ClientContext ctx;
        v1::TorrentFilesResponse resp;
        return c.Check(c.torrents().SetFilePriorities(&ctx, req, &resp));
      };
    });
  }
  // `shoal torrent NAME ID on|off`, answered with the torrent's status.
  auto on_off = [&](const char* name, const char* help,
                    std::function<grpc::Status(Client&, grpc::ClientContext*,
                                               const std::string&, bool,
                                               v1::TorrentStatus*)>
                        call) {
    auto* cmd = torrent.add_subcommand(name, help);
    auto id = std::make_shared<std::string>();
    auto mode = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Torrent ID")->required();
    cmd->add_option("on|off", *mode, "on or off")
        ->required()
        ->check(CLI::IsMember({"on", "off"}));
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        grpc::ClientContext ctx;
        v1::TorrentStatus st;
        return c.Check(call(c, &ctx, *id, *mode == "on", &st));
      };
    });
  };
  on_off("sequential", "Turn sequential download on or off",
         [](Client& c, grpc::ClientContext* ctx, const std::string& id, bool on,
            v1::TorrentStatus* st) {
           v1::SetSequentialRequest req;
           req.set_id(id);
           req.set_sequential(on);
           return c.torrents().SetSequential(ctx, req, st);
         });
  on_off("super-seed",
         "Turn BEP 16 super-seeding on or off: while seeding, show each peer "
         "one piece at a time so that each is sent about once",
         [](Client& c, grpc::ClientContext* ctx, const std::string& id, bool on,
            v1::TorrentStatus* st) {
           v1::SetSuperSeedingRequest req;
           req.set_id(id);
           req.set_on(on);
           return c.torrents().SetSuperSeeding(ctx, req, st);
         });
}

void AddLimitCommand(CLI::App& torrent, Action& action) {
  auto* cmd = torrent.add_subcommand(
      "limit",
      "Show or set rate limits (bytes/s, 0 = unlimited) and seeding limits "
      "of a torrent, or of the node without ID");
  struct Args {
    std::string id;
    std::optional<uint64_t> down;
    std::optional<uint64_t> up;
    std::optional<double> ratio;
    std::optional<uint64_t> seed_time;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("ID", a->id, "Torrent ID (omit for the whole node)");
  cmd->add_option("--ratio", a->ratio,
                  "Stop seeding at this share ratio (0: never); a torrent's "
                  "own replaces the node's, the node's lasts until restart")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--seed-time", a->seed_time,
                  "Stop seeding after this many seconds (0: never)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{315360000}));
  cmd->add_option("--down", a->down, "Download limit, bytes per second")
      ->check(NotNegative);
  cmd->add_option("--up", a->up, "Upload limit, bytes per second")
      ->check(NotNegative);
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      v1::RateLimits limits;
      {
        grpc::ClientContext ctx;
        v1::TorrentRequest req;
        req.set_id(a->id);
        absl::Status s =
            c.Check(c.torrents().GetRateLimits(&ctx, req, &limits));
        if (!s.ok()) return s;
      }
      if (a->down || a->up || a->ratio || a->seed_time) {
        v1::RateLimits req;
        req.set_id(a->id);
        req.set_download_bytes_per_second(
            a->down.value_or(limits.download_bytes_per_second()));
        req.set_upload_bytes_per_second(
            a->up.value_or(limits.upload_bytes_per_second()));
        if (a->ratio) req.set_share_ratio_limit(*a->ratio);
        if (a->seed_time) req.set_seed_time_limit(*a->seed_time);
        grpc::ClientContext ctx;
        absl::Status s =
            c.Check(c.torrents().SetRateLimits(&ctx, req, &limits));
        if (!s.ok()) return s;
      }
      if (a->json) {
        PrintJson(
            {{"id", a->id},
             {"download_bytes_per_second", limits.download_bytes_per_second()},
             {"upload_bytes_per_second", limits.upload_bytes_per_second()},
             {"share_ratio_limit", limits.share_ratio_limit()},
             {"seed_time_limit", limits.seed_time_limit()}});
      } else {
        auto text = [](uint64_t r) {
          return r == 0 ? std::string("unlimited")
                        : Rate(static_cast<double>(r));
        };
        std::printf("download      %s\nupload        %s\n",
                    text(limits.download_bytes_per_second()).c_str(),
                    text(limits.upload_bytes_per_second()).c_str());
        std::printf(
            "share ratio   %s\nseed time     %s\n",
            limits.share_ratio_limit() == 0
                ? "no limit"
                : absl::StrFormat("%.2f", limits.share_ratio_limit()).c_str(),
            limits.seed_time_limit() == 0
                ? "no limit"
                : absl::StrCat(limits.seed_time_limit(), " s").c_str());
      }
      return absl::OkStatus();
    };
  });
}

void AddWatchCommand(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "watch", "Follow the node's events (progress, state changes, errors)");
  auto json = std::make_shared<bool>(false);
  auto replay = std::make_shared<bool>(false);
  auto count = std::make_shared<int>(0);
  cmd->add_flag("--json", *json, "One JSON object per line");
  cmd->add_flag("--replay", *replay, "Start with the recent events");
  cmd->add_option("--count", *count, "Stop after N events (0: never)");
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      grpc::ClientContext ctx;
      v1::EventsRequest req;
      req.set_replay(*replay);
      auto reader = c.node().Events(&ctx, req);
      v1::Event e;
      int seen = 0;
      while (reader->Read(&e)) {
        std::printf("%s\n",
                    *json ? EventJson(e).dump().c_str() : EventText(e).c_str());
        std::fflush(stdout);
        if (*count > 0 && ++seen >= *count) {
          ctx.TryCancel();
          break;
        }
      }
      absl::Status s = c.Check(reader->Finish());
      if (*count > 0 && seen >= *count) return absl::OkStatus();
      return s;
    };
  });
}

}  // namespace shoal::cli
