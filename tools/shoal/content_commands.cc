#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/tree_walk.h"
#include "tools/shoal/commands.h"
#include "tools/shoal/progress.h"

namespace shoal::cli {
namespace {

constexpr size_t kAddMessageBytes = 1 << 20;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The new content's ID, or with `json` its description (as `stat --json`).
absl::Status PrintAdded(const v1::AddResponse& response, bool json) {
  if (json) {
    PrintJson(ContentJson(response.content()));
  } else {
    std::printf("%s\n", response.content().id().c_str());
  }
  return absl::OkStatus();
}

absl::Status AddStream(Client& client, const std::string& path,
                       const std::string& name, bool pin, bool json) {
  FILE* in = stdin;
  std::unique_ptr<FILE, int (*)(FILE*)> owned(nullptr, &std::fclose);
  v1::AddRequest header_msg;
  v1::AddHeader* header = header_msg.mutable_header();
  header->set_pin(pin);
  if (path != "-") {
    owned.reset(std::fopen(path.c_str(), "rb"));
    if (!owned) return Errno(absl::StrCat("cannot open ", path));
    in = owned.get();
    struct stat st;
    if (::fstat(::fileno(in), &st) != 0)
      return Errno(absl::StrCat("cannot stat ", path));
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a regular file"));
    }
    header->set_length(static_cast<uint64_t>(st.st_size));
    header->set_name(
        name.empty() ? std::filesystem::path(path).filename().string() : name);
  } else {
    header->set_name(name);
  }
  grpc::ClientContext ctx;
  v1::AddResponse response;
  auto writer = client.content().Add(&ctx, &response);
  bool open = writer->Write(header_msg);
  v1::AddRequest msg;
  std::string* buf = msg.mutable_data();
  uint64_t sent = 0;
  while (open) {
    buf->resize(kAddMessageBytes);
    size_t n = std::fread(buf->data(), 1, buf->size(), in);
    if (n == 0) {
      if (std::ferror(in)) {
        ctx.TryCancel();
        return Errno(absl::StrCat("reading ", path));
      }
      break;
    }
    buf->resize(n);
    sent += n;
    open = writer->Write(msg);
  }
  if (header->has_length() && open && sent != header->length()) {
    ctx.TryCancel();
    return absl::FailedPreconditionError(
        absl::StrCat(path, " changed size while being read"));
  }
  writer->WritesDone();
  absl::Status s = client.Check(writer->Finish());
  if (!s.ok()) return s;
  return PrintAdded(response, json);
}

// Streams the tree at `root` as one directory add.
absl::Status AddTreeStream(Client& client, const std::string& root,
                           const std::string& name, bool pin, bool json) {
  // The node checks the limit exactly; this only stops a runaway walk.
  auto files = ListTreeFiles(root, 1'000'000);
  if (!files.ok()) return files.status();
  grpc::ClientContext ctx;
  v1::AddResponse response;
  auto writer = client.content().Add(&ctx, &response);
  v1::AddRequest first;
  first.mutable_header()->set_directory(true);
  first.mutable_header()->set_pin(pin);
  // "site/" names the folder "site" too.
  std::filesystem::path norm =
      std::filesystem::absolute(root).lexically_normal();
  if (!norm.has_filename()) norm = norm.parent_path();
  first.mutable_header()->set_name(name.empty() ? norm.filename().string()
                                                : name);
  bool open = writer->Write(first);
  v1::AddRequest msg;
  for (const TreeFile& f : *files) {
    if (!open) break;
    v1::AddRequest h;
    h.mutable_header()->set_path(f.path);
    h.mutable_header()->set_length(f.size);
    open = writer->Write(h);
    std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(f.full.c_str(), "rb"),
                                             &std::fclose);
    if (!in) {
      ctx.TryCancel();
      return Errno(absl::StrCat("cannot open ", f.full.string()));
    }
    uint64_t sent = 0;
    std::string* buf = msg.mutable_data();
    while (open) {
      buf->resize(kAddMessageBytes);
      size_t n = std::fread(buf->data(), 1, buf->size(), in.get());
      if (n == 0) {
        if (std::ferror(in.get())) {
          ctx.TryCancel();
          return Errno(absl::StrCat("reading ", f.full.string()));
        }
        break;
      }
      buf->resize(n);
      sent += n;
      open = writer->Write(msg);
    }
    if (open && sent != f.size) {
      ctx.TryCancel();
      return absl::FailedPreconditionError(
          absl::StrCat(f.full.string(), " changed size while being read"));
    }
  }
  writer->WritesDone();
  absl::Status s = client.Check(writer->Finish());
  if (!s.ok()) return s;
  return PrintAdded(response, json);
}

absl::Status AddByPath(Client& client, const std::string& path,
                       const std::string& name, bool pin, bool json) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad path ", path));
  v1::AddFileRequest req;
  req.set_path(abs.string());
  req.set_name(name);
  req.set_pin(pin);
  v1::AddResponse response;
  grpc::ClientContext ctx;
  absl::Status s = client.Check(client.content().AddFile(&ctx, req, &response));
  if (!s.ok()) return s;
  return PrintAdded(response, json);
}

// Streams content into `out`, checking offsets; `progress` may be null.
absl::Status ReadInto(Client& client, const std::string& target,
                      uint64_t offset, std::optional<uint64_t> length,
                      const std::vector<std::string>& peers, FILE* out,
                      Progress* progress) {
  v1::ReadRequest req;
  // ID/PATH names a file of a directory content.
  const size_t slash = target.find('/');
  req.set_id(target.substr(0, slash));
  if (slash != std::string::npos) {
    req.set_path(target.substr(slash + 1));
    if (req.path().empty()) {
      return absl::InvalidArgumentError(
          "name a file after the '/' (shoal ls-tree ID lists them)");
    }
  }
  for (const auto& p : peers) req.add_peers(p);
  req.set_offset(offset);
  if (length) req.set_length(*length);
  grpc::ClientContext ctx;
  auto reader = client.content().Read(&ctx, req);
  return CopyReadStream(client, ctx, *reader, offset, length, out,
                        [&](uint64_t done, uint64_t total, bool last) {
                          if (progress) progress->Update(done, total, last);
                        });
}

}  // namespace

absl::Status CopyReadStream(
    Client& client, grpc::ClientContext& ctx,
    grpc::ClientReaderInterface<v1::ReadResponse>& reader, uint64_t offset,
    std::optional<uint64_t> length, FILE* out,
    const std::function<void(uint64_t, uint64_t, bool)>& progress) {
  v1::ReadResponse msg;
  uint64_t expect = offset;
  uint64_t total = 0;
  while (reader.Read(&msg)) {
    if (msg.offset() != expect) {
      ctx.TryCancel();
      return absl::DataLossError(absl::StrCat(
          "shoald sent offset ", msg.offset(), ", expected ", expect));
    }
    total = length ? *length : msg.content_length() - offset;
    const std::string& d = msg.data();
    if (std::fwrite(d.data(), 1, d.size(), out) != d.size()) {
      ctx.TryCancel();
      return Errno("writing output");
    }
    expect += d.size();
    progress(expect - offset, total, /*last=*/false);
  }
  absl::Status s = client.Check(reader.Finish());
  if (s.ok()) progress(expect - offset, total, /*last=*/true);
  return s;
}

absl::Status WriteFileAtomically(
    const std::string& path, const std::function<absl::Status(FILE*)>& fill) {
  // Written beside the target and renamed into place, so the file is whole or
  // absent.
  std::string part = path + ".shoal-part";
  FILE* f = std::fopen(part.c_str(), "wb");
  if (f == nullptr) return Errno(absl::StrCat("cannot create ", part));
  absl::Status s = fill(f);
  if (std::fclose(f) != 0 && s.ok()) s = Errno(absl::StrCat("writing ", part));
  if (s.ok() && std::rename(part.c_str(), path.c_str()) != 0) {
    s = Errno(absl::StrCat("renaming to ", path));
  }
  if (!s.ok()) std::remove(part.c_str());
  return s;
}

namespace {

absl::StatusOr<v1::ContentInfo> StatId(Client& client, const std::string& id) {
  v1::StatRequest req;
  req.set_id(id);
  v1::StatResponse resp;
  grpc::ClientContext ctx;
  absl::Status s = client.Check(client.content().Stat(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.content();
}

absl::StatusOr<std::vector<v1::TreeEntry>> ListTree(
    Client& client, const std::string& id,
    const std::vector<std::string>& peers) {
  v1::ListTreeRequest req;
  req.set_id(id);
  for (const auto& p : peers) req.add_peers(p);
  grpc::ClientContext ctx;
  auto reader = client.content().ListTree(&ctx, req);
  std::vector<v1::TreeEntry> out;
  v1::ListTreeResponse msg;
  while (reader->Read(&msg))
    for (auto& e : *msg.mutable_entries()) out.push_back(std::move(e));
  absl::Status s = client.Check(reader->Finish());
  if (!s.ok()) return s;
  return out;
}

// Writes every file of directory `id` under `out_dir`.
absl::Status GetTree(Client& client, const std::string& id,
                     const std::vector<v1::TreeEntry>& tree,
                     const std::vector<std::string>& peers,
                     const std::string& out_dir) {
  uint64_t bytes = 0;
  for (const v1::TreeEntry& e : tree) {
    // The node checked the paths; a path that would leave out_dir is refused
    // all the same.
    const std::filesystem::path rel(e.path());
    if (rel.is_absolute() || e.path().empty()) {
      return absl::DataLossError(
          absl::StrCat("shoald listed a bad path '", e.path(), "'"));
    }
    for (const auto& seg : rel) {
      if (seg == ".." || seg == ".") {
        return absl::DataLossError(
            absl::StrCat("shoald listed a bad path '", e.path(), "'"));
      }
    }
    const std::filesystem::path dest = std::filesystem::path(out_dir) / rel;
    std::error_code ec;
    std::filesystem::create_directories(dest.parent_path(), ec);
    if (ec) {
      return absl::InternalError(absl::StrCat(
          "cannot create ", dest.parent_path().string(), ": ", ec.message()));
    }
    absl::Status s = WriteFileAtomically(dest.string(), [&](FILE* f) {
      return ReadInto(client, id + "/" + e.path(), 0, std::nullopt, peers, f,
                      nullptr);
    });
    if (!s.ok()) return s;
    bytes += e.length();
  }
  std::fprintf(stderr, "%zu files, %s\n", tree.size(),
               HumanBytes(bytes).c_str());
  return absl::OkStatus();
}

void PrintContent(const v1::ContentInfo& c) {
  if (c.is_directory()) {
    std::printf("id            %s\n", c.id().c_str());
    std::printf("kind          directory\n");
    std::printf("name          %s\n", c.name().c_str());
    std::printf("length        %llu (%s)\n",
                static_cast<unsigned long long>(c.length()),
                HumanBytes(c.length()).c_str());
    std::printf("files         %u of %u local%s\n", c.files_local(),
                c.num_files(),
                c.files_local() == c.num_files() ? " (complete)" : "");
    std::printf("piece length  %u\n", c.piece_length());
    std::printf("pinned        %s\n", c.pinned() ? "yes" : "no");
    std::printf("added         %s\n", FormatTimestamp(c.added()).c_str());
    std::printf("last access   %s\n", FormatTimestamp(c.last_access()).c_str());
    std::printf("magnet        %s\n", c.magnet().c_str());
    return;
  }
  std::printf("kind          file%s\n",
              c.directory_file() ? " (stored for directories)" : "");
  std::printf("id            %s\n", c.id().c_str());
  std::printf("name          %s\n", c.name().c_str());
  std::printf("length        %llu (%s)\n",
              static_cast<unsigned long long>(c.length()),
              HumanBytes(c.length()).c_str());
  std::printf("piece length  %u\n", c.piece_length());
  std::printf("pieces        %u of %u local%s\n", c.pieces_local(),
              c.num_pieces(),
              c.pieces_local() == c.num_pieces() ? " (complete)" : "");
  if (c.fetching()) {
    std::printf(
        "fetching      %s/s from %u peers%s\n",
        HumanBytes(static_cast<uint64_t>(c.download_rate())).c_str(),
        c.num_peers(),
        c.has_eta_seconds()
            ? absl::StrCat(", eta ", HumanDuration(c.eta_seconds())).c_str()
            : "");
  }
  std::printf("pieces root   %s\n", c.pieces_root().c_str());
  std::printf("pinned        %s\n", c.pinned() ? "yes" : "no");
  std::printf("added         %s\n", FormatTimestamp(c.added()).c_str());
  std::printf("last access   %s\n", FormatTimestamp(c.last_access()).c_str());
  std::printf("magnet        %s\n", c.magnet().c_str());
}

}  // namespace

void AddContentCommands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand(
        "add",
        "Add a file (or - for stdin), or a directory tree as one content; "
        "prints its content ID");
    auto path = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto pin = std::make_shared<bool>(false);
    auto by_path = std::make_shared<bool>(false);
    cmd->add_option("PATH", *path,
                    "File or directory to add, or - to read standard input")
        ->required();
    cmd->add_option("--name", *name,
                    "Name to remember it by (default: the file name)");
    cmd->add_flag("--pin", *pin, "Pin it, so it is never evicted");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json,
                  "Print its description as one JSON object (as stat --json)");
    cmd->add_flag("--by-path", *by_path,
                  "Let shoald read PATH itself instead of streaming it "
                  "(faster; shoald must see "
                  "the same file)");
    cmd->callback([=, &action] {
      action = [=](Client& c) {
        if (*by_path && *path != "-")
          return AddByPath(c, *path, *name, *pin, *json);
        std::error_code ec;
        if (*path != "-" && std::filesystem::is_directory(*path, ec))
          return AddTreeStream(c, *path, *name, *pin, *json);
        return AddStream(c, *path, *name, *pin, *json);
      };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "cat", "Write content, or one file of a directory, to standard output");
    auto id = std::make_shared<std::string>();
    auto offset = std::make_shared<uint64_t>(0);
    auto length = std::make_shared<std::optional<uint64_t>>();
    cmd->add_option("ID", *id, "Content ID, or ID/PATH for a directory's file")
        ->required();
    cmd->add_option("--offset", *offset, "First byte to write")
        ->check(NotNegative);
    cmd->add_option("--length", *length, "Number of bytes to write")
        ->check(NotNegative);
    auto peers = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--peer", *peers,
                    "Fetch from this node (its peer address HOST:PORT) if not "
                    "held here")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->callback([=, &action] {
      action = [=](Client& c) {
        absl::Status s =
            ReadInto(c, *id, *offset, *length, *peers, stdout, nullptr);
        if (std::fflush(stdout) != 0 && s.ok()) return Errno("writing output");
        return s;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "get",
        "Write content to a file (a directory content to a folder), with "
        "progress on a terminal");
    auto id = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Content ID, or ID/PATH for a directory's file")
        ->required();
    cmd->add_option("-o,--output", *out,
                    "Output file (or folder, for a directory)")
        ->required();
    auto peers = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--peer", *peers,
                    "Fetch from this node (its peer address HOST:PORT) if not "
                    "held here")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        if (id->find('/') == std::string::npos) {
          auto tree = ListTree(c, *id, *peers);
          if (tree.ok()) return GetTree(c, *id, *tree, *peers, *out);
          if (tree.status().code() != absl::StatusCode::kInvalidArgument)
            return tree.status();
        }
        return WriteFileAtomically(*out, [&](FILE* f) {
          Progress progress;
          return ReadInto(c, *id, 0, std::nullopt, *peers, f, &progress);
        });
      };
    });
  }
  {
    auto* cmd =
        app.add_subcommand("ls-tree", "List the files of a directory content");
    auto id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    auto peers = std::make_shared<std::vector<std::string>>();
    cmd->add_option("ID", *id, "Content ID of a directory")->required();
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->add_option("--peer", *peers,
                    "Fetch the directory's dict from this node if not held "
                    "here")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        auto tree = ListTree(c, *id, *peers);
        if (!tree.ok()) return tree.status();
        if (*json) {
          nlohmann::json files = nlohmann::json::array();
          for (const auto& e : *tree) {
            files.push_back({{"path", e.path()},
                             {"length", e.length()},
                             {"id", e.id()},
                             {"local", e.local()}});
          }
          PrintJson({{"id", *id}, {"files", files}});
          return absl::OkStatus();
        }
        for (const auto& e : *tree) {
          std::printf("%s  %10s  %s  %s\n", e.id().c_str(),
                      HumanBytes(e.length()).c_str(),
                      e.local() ? "local" : "     ", e.path().c_str());
        }
        return absl::OkStatus();
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("stat", "Describe one content");
    auto id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("ID", *id, "Content ID")->required();
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        auto info = StatId(c, *id);
        if (!info.ok()) return info.status();
        if (*json) {
          PrintJson(ContentJson(*info));
        } else {
          PrintContent(*info);
        }
        return absl::OkStatus();
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("ls", "List stored content");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print one JSON object");
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        v1::ListResponse resp;
        grpc::ClientContext ctx;
        absl::Status s =
            c.Check(c.content().List(&ctx, v1::ListRequest(), &resp));
        if (!s.ok()) return s;
        if (*json) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& ci : resp.contents())
            list.push_back(ContentJson(ci));
          PrintJson({{"contents", list}});
          return absl::OkStatus();
        }
        for (const auto& ci : resp.contents()) {
          // A directory counts files, a file pieces.
          std::printf("%s  %10s  %6u/%-6u %s %s  %s\n", ci.id().c_str(),
                      HumanBytes(ci.length()).c_str(),
                      ci.is_directory() ? ci.files_local() : ci.pieces_local(),
                      ci.is_directory() ? ci.num_files() : ci.num_pieces(),
                      ci.is_directory() ? "dir " : "file",
                      ci.pinned() ? "pinned" : "      ", ci.name().c_str());
        }
        return absl::OkStatus();
      };
    });
  }
  for (const char* verb : {"pin", "unpin", "rm"}) {
    std::string v = verb;
    std::string help =
        v == "pin"     ? "Pin content: it is never evicted"
        : v == "unpin" ? "Unpin content: it may be evicted when space is needed"
                       : "Remove content and the chunks no other content uses";
    auto* cmd = app.add_subcommand(v, help);
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Content ID")->required();
    cmd->callback([=, &action] {
      action = [=](Client& c) -> absl::Status {
        grpc::ClientContext ctx;
        if (v == "pin") {
          v1::PinRequest req;
          req.set_id(*id);
          v1::PinResponse resp;
          return c.Check(c.content().Pin(&ctx, req, &resp));
        }
        if (v == "unpin") {
          v1::UnpinRequest req;
          req.set_id(*id);
          v1::UnpinResponse resp;
          return c.Check(c.content().Unpin(&ctx, req, &resp));
        }
        v1::RemoveRequest req;
        req.set_id(*id);
        v1::RemoveResponse resp;
        return c.Check(c.content().Remove(&ctx, req, &resp));
      };
    });
  }
}

void AddPreheatCommand(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "preheat",
      "Make more nodes of the cluster fetch a content now (so their first "
      "request is a hit)");
  auto id = std::make_shared<std::string>();
  auto nodes = std::make_shared<uint32_t>(3);
  auto timeout = std::make_shared<double>(300);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("ID", *id, "Content ID")->required();
  cmd->add_option("--nodes", *nodes,
                  "How many nodes (the closest to the ID that lack it)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--timeout", *timeout, "Seconds to wait for them")
      ->check(CLI::Range(1.0, 86400.0));
  cmd->add_flag("--json", *json, "Print one JSON object per state change");
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      v1::PreheatRequest req;
      req.set_id(*id);
      req.set_nodes(*nodes);
      req.set_timeout_seconds(*timeout);
      grpc::ClientContext ctx;
      auto reader = c.content().Preheat(&ctx, req);
      v1::PreheatProgress p;
      while (reader->Read(&p)) {
        if (*json) {
          PrintJson({{"node", p.node()},
                     {"node_id", p.node_id()},
                     {"state", p.state()},
                     {"done", p.done()},
                     {"total", p.total()}});
        } else {
          std::printf("%-22s %-12s %lld/%lld\n", p.node().c_str(),
                      p.state().c_str(), static_cast<long long>(p.done()),
                      static_cast<long long>(p.total()));
        }
        std::fflush(stdout);
      }
      return c.Check(reader->Finish());
    };
  });
}

void AddProvidersCommand(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "providers", "Look up who provides a content in the cluster DHT");
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto timeout = std::make_shared<double>(0);
  cmd->add_option("ID", *id, "Content ID")->required();
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->add_option("--timeout", *timeout, "Lookup time limit, seconds");
  cmd->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      v1::FindProvidersRequest req;
      req.set_id(*id);
      req.set_timeout_seconds(*timeout);
      v1::FindProvidersResponse resp;
      grpc::ClientContext ctx;
      absl::Status s = c.Check(c.content().FindProviders(&ctx, req, &resp));
      if (!s.ok()) return s;
      std::vector<std::string> list(resp.providers().begin(),
                                    resp.providers().end());
      if (*json) {
        PrintJson({{"id", *id}, {"providers", list}});
      } else {
        for (const auto& p : list) std::printf("%s\n", p.c_str());
      }
      return absl::OkStatus();
    };
  });
}

void AddNodeCommands(CLI::App& app, Action& action) {
  auto* node = app.add_subcommand("node", "The node itself");
  node->require_subcommand(1);
  auto* info =
      node->add_subcommand("info", "Identity, addresses and storage figures");
  auto json = std::make_shared<bool>(false);
  info->add_flag("--json", *json, "Print one JSON object");
  info->callback([=, &action] {
    action = [=](Client& c) -> absl::Status {
      v1::NodeInfo ni;
      grpc::ClientContext ctx;
      absl::Status s =
          c.Check(c.node().GetInfo(&ctx, v1::GetInfoRequest(), &ni));
      if (!s.ok()) return s;
      const v1::StoreInfo& st = ni.store();
      if (*json) {
        PrintJson({
            {"node_id", ni.node_id()},
            {"version", ni.version()},
            {"listen_address", ni.listen_address()},
            {"listen_addresses",
             std::vector<std::string>(ni.listen_addresses().begin(),
                                      ni.listen_addresses().end())},
            {"api_address", ni.api_address()},
            {"gateway_address", ni.gateway_address()},
            {"data_dir", ni.data_dir()},
            {"uptime_seconds", ni.uptime_seconds()},
            {"hash_threads", ni.hash_threads()},
            {"dht_nodes_public", ni.dht_nodes_public()},
            {"dht_nodes_cluster", ni.dht_nodes_cluster()},
            {"num_peers", ni.num_peers()},
            {"num_torrents", ni.num_torrents()},
            {"bootstrap", std::vector<std::string>(ni.bootstrap().begin(),
                                                   ni.bootstrap().end())},
            {"dht_routers", std::vector<std::string>(ni.dht_routers().begin(),
                                                     ni.dht_routers().end())},
            {"store",
             {{"capacity_bytes", st.capacity_bytes()},
              {"used_bytes", st.used_bytes()},
              {"reserved_bytes", st.reserved_bytes()},
              {"num_contents", st.num_contents()},
              {"num_chunks", st.num_chunks()},
              {"data_loss_events", st.data_loss_events()},
              {"evictions", st.evictions()}}},
        });
        return absl::OkStatus();
      }
      std::printf("node id       %s\n", ni.node_id().c_str());
      std::printf("version       %s\n", ni.version().c_str());
      std::printf("api           %s\n", ni.api_address().c_str());
      std::printf("listen        %s\n",
                  ni.listen_addresses().empty()
                      ? ni.listen_address().c_str()
                      : absl::StrJoin(ni.listen_addresses(), " ").c_str());
      if (!ni.gateway_address().empty()) {
        std::printf("gateway       http://%s/content/<id>\n",
                    ni.gateway_address().c_str());
      }
      std::printf("data dir      %s\n", ni.data_dir().c_str());
      std::printf("uptime        %.0f s\n", ni.uptime_seconds());
      std::printf("dht nodes     %u public, %u cluster\n",
                  ni.dht_nodes_public(), ni.dht_nodes_cluster());
      std::printf("peers         %u open connections, %u torrents\n",
                  ni.num_peers(), ni.num_torrents());
      std::printf("contents      %llu (%llu chunks)\n",
                  static_cast<unsigned long long>(st.num_contents()),
                  static_cast<unsigned long long>(st.num_chunks()));
      std::printf("used          %s of %s\n",
                  HumanBytes(st.used_bytes()).c_str(),
                  st.capacity_bytes() ? HumanBytes(st.capacity_bytes()).c_str()
                                      : "unlimited");
      std::printf("evictions     %llu\n",
                  static_cast<unsigned long long>(st.evictions()));
      std::printf("data loss     %llu\n",
                  static_cast<unsigned long long>(st.data_loss_events()));
      return absl::OkStatus();
    };
  });
  auto* config = app.add_subcommand("config", "The node's configuration");
  config->require_subcommand(1);
  auto* show = config->add_subcommand(
      "show",
      "Print the node's effective configuration (flags, file and defaults "
      "merged) as TOML that shoald --config accepts (admin)");
  show->callback([&action] {
    action = [](Client& c) -> absl::Status {
      v1::GetConfigResponse r;
      grpc::ClientContext ctx;
      absl::Status s =
          c.Check(c.node().GetConfig(&ctx, v1::GetConfigRequest(), &r));
      if (!s.ok()) return s;
      std::fwrite(r.toml().data(), 1, r.toml().size(), stdout);
      return absl::OkStatus();
    };
  });
}

}  // namespace shoal::cli
