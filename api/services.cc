#include "api/services.h"

#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "api/read_stream.h"
#include "base/hex.h"
#include "base/status_macros.h"
#include "node/content_io.h"
#include "node/stats.h"
#include "spdlog/spdlog.h"

namespace shoal::api {
namespace {

using chunk::ContentId;

// Read responses carry at most this many bytes each, well under gRPC's 4 MiB
// message limit.

absl::StatusOr<ContentId> ParseId(const std::string& id) {
  auto parsed = ContentId::FromHex(id);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad content ID '", id.substr(0, 80),
                     "': ", std::string(parsed.status().message())));
  }
  return parsed;
}

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t us = absl::ToUnixMicros(t);
  out->set_seconds(us / 1000000);
  out->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
}

void FillContent(const store::ContentState& st, v1::ContentInfo* out) {
  const store::ContentRecord& r = st.record;
  out->set_id(r.id.Hex());
  out->set_length(r.length);
  out->set_piece_length(r.piece_length);
  out->set_pieces_root(HexEncode(std::span<const uint8_t>(r.pieces_root)));
  out->set_num_pieces(r.layout().num_pieces());
  out->set_pieces_local(st.pieces_local);
  out->set_pinned(st.pinned);
  out->set_name(r.name);
  SetTime(r.added, out->mutable_added());
  SetTime(r.last_access, out->mutable_last_access());
  out->set_magnet(absl::StrCat("magnet:?xt=urn:btmh:1220", r.id.Hex()));
  out->set_directory_file(r.in_directory_only);
  if (r.is_directory()) {
    out->set_is_directory(true);
    out->set_num_pieces(0);
    out->set_pieces_root("");
    out->set_num_files(static_cast<uint32_t>(r.directory->files().size()));
    out->set_files_local(st.files_local);
  }
}

std::vector<node::HostPort> ParsePeers(
    const google::protobuf::RepeatedPtrField<std::string>& peers,
    absl::Status* status) {
  std::vector<node::HostPort> out;
  for (const std::string& p : peers) {
    auto hp = node::HostPort::ParsePeer(p);
    if (!hp.ok()) {
      *status = hp.status();
      return {};
    }
    out.push_back(*std::move(hp));
  }
  return out;
}

// Logs calls that fail for reasons other than the caller's input.
grpc::Status Finish(const char* method, const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kCancelled:
      break;
    default:
      spdlog::warn("{}: {}", method, s.ToString());
  }
  return ToGrpc(s);
}

}  // namespace

grpc::Status ContentServiceImpl::Add(grpc::ServerContext* ctx,
                                     grpc::ServerReader<v1::AddRequest>* reader,
                                     v1::AddResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  v1::AddRequest msg;
  if (!reader->Read(&msg)) {
    return Finish("Add", absl::InvalidArgumentError(
                             "empty Add stream: send a header first"));
  }
  if (!msg.has_header()) {
    return Finish("Add", absl::InvalidArgumentError(
                             "the first Add message must be a header"));
  }
  const v1::AddHeader header = msg.header();
  if (header.directory()) {
    return Finish("Add", AddDirectoryStream(ctx, reader, header, response));
  }
  std::optional<uint64_t> length;
  if (header.has_length()) length = header.length();
  auto adder = node::ContentAdder::Start(node_.store(), node_.pool(), length,
                                         header.name(), node_.spool_dir());
  if (!adder.ok()) return Finish("Add", adder.status());
  while (reader->Read(&msg)) {
    if (msg.has_header()) {
      return Finish("Add", absl::InvalidArgumentError(
                               "only the first Add message may be a header"));
    }
    absl::Status s = (*adder)->Write(msg.data());
    if (!s.ok()) return Finish("Add", s);
  }
  if (ctx->IsCancelled())
    return Finish("Add", absl::CancelledError("client cancelled the add"));
  auto state = (*adder)->Finish();
  if (!state.ok()) return Finish("Add", state.status());
  if (header.pin()) {
    absl::Status s = node_.store().SetPinned(state->record.id, true);
    if (!s.ok()) return Finish("Add", s);
    state->pinned = true;
  }
  if (state->record.length > 0) node_.session().Provide(state->record.id);
  FillContent(*state, response->mutable_content());
  return grpc::Status::OK;
}

absl::Status ContentServiceImpl::AddDirectoryStream(
    grpc::ServerContext* ctx, grpc::ServerReader<v1::AddRequest>* reader,
    const v1::AddHeader& header, v1::AddResponse* response) {
  std::vector<chunk::DirectoryFile> files;
  std::vector<chunk::ContentId> added;
  // Files added before a failure go again unless a directory holds them.
  struct Cleanup {
    store::ChunkStore& store;
    std::vector<chunk::ContentId>& ids;
    bool armed = true;
    ~Cleanup() {
      if (armed) store.RemoveOrphans(ids);
    }
  } cleanup{node_.store(), added};
  std::unique_ptr<node::ContentAdder> adder;
  std::string path;
  auto finish_file = [&]() -> absl::Status {
    if (!adder) return absl::OkStatus();
    auto st = adder->Finish();
    adder.reset();
    if (!st.ok()) {
      return absl::Status(
          st.status().code(),
          absl::StrCat("file '", path, "': ", st.status().message()));
    }
    added.push_back(st->record.id);
    files.push_back({path, st->record.length, st->record.pieces_root});
    return absl::OkStatus();
  };
  v1::AddRequest msg;
  while (reader->Read(&msg)) {
    if (msg.has_header()) {
      SHOAL_RETURN_IF_ERROR(finish_file());
      const v1::AddHeader& h = msg.header();
      if (h.path().empty() || !h.has_length()) {
        return absl::InvalidArgumentError(
            "in a directory add, each file's header needs a path and a "
            "length");
      }
      if (files.size() >= chunk::kMaxDirectoryFiles) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a directory holds at most ", chunk::kMaxDirectoryFiles, " files"));
      }
      path = h.path();
      auto a = node::ContentAdder::Start(node_.store(), node_.pool(),
                                         h.length(), path, node_.spool_dir(),
                                         node::AddAs::kDirectoryFile);
      if (!a.ok()) return a.status();
      adder = *std::move(a);
      continue;
    }
    if (!adder) {
      return absl::InvalidArgumentError(
          "in a directory add, data must follow a file's header");
    }
    SHOAL_RETURN_IF_ERROR(adder->Write(msg.data()));
  }
  if (ctx->IsCancelled())
    return absl::CancelledError("client cancelled the add");
  SHOAL_RETURN_IF_ERROR(finish_file());
  cleanup.armed = false;
  auto state =
      node::CommitDirectory(node_.store(), std::move(files), header.name());
  if (!state.ok()) return state.status();
  if (header.pin()) {
    SHOAL_RETURN_IF_ERROR(node_.store().SetPinned(state->record.id, true));
    state->pinned = true;
  }
  node_.session().Provide(state->record.id);
  FillContent(*state, response->mutable_content());
  return absl::OkStatus();
}

grpc::Status ContentServiceImpl::AddFile(grpc::ServerContext* ctx,
                                         const v1::AddFileRequest* request,
                                         v1::AddResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  std::filesystem::path path(request->path());
  if (path.empty() || !path.is_absolute()) {
    return Finish("AddFile",
                  absl::InvalidArgumentError(absl::StrCat(
                      "path must be absolute, got '", request->path(), "'")));
  }
  auto resolved = node_.path_roots().Resolve(path, "file");
  if (!resolved.ok()) return Finish("AddFile", resolved.status());
  std::error_code ec;
  const bool is_dir = std::filesystem::is_directory(*resolved, ec);
  auto state =
      is_dir ? node::AddDirectory(node_.store(), node_.pool(), *resolved,
                                  request->name())
             : node::AddFile(node_.store(), node_.pool(), *resolved,
                             request->name().empty() ? path.filename().string()
                                                     : request->name());
  if (!state.ok()) return Finish("AddFile", state.status());
  if (request->pin()) {
    absl::Status s = node_.store().SetPinned(state->record.id, true);
    if (!s.ok()) return Finish("AddFile", s);
    state->pinned = true;
  }
  if (state->record.length > 0) node_.session().Provide(state->record.id);
  FillContent(*state, response->mutable_content());
  return grpc::Status::OK;
}

absl::Status ContentServiceImpl::FetchNotFound(const ContentId& id,
                                               double seconds,
                                               std::string why) {
  node::NodeStats::Get().FetchFinished(node::FetchResult::kNotFound, seconds);
  node::Event e;
  e.kind = node::EventKind::kFetchFailed;
  e.id = id.Hex();
  e.seconds = seconds;
  e.message = why;
  node_.session().events().Publish(std::move(e));
  return absl::NotFoundError(std::move(why));
}

absl::StatusOr<store::ContentState> ContentServiceImpl::StatOrFetch(
    const ContentId& id,
    const google::protobuf::RepeatedPtrField<std::string>& peer_list,
    std::shared_ptr<node::PieceEvents>* events,
    std::optional<ContentId> directory, uint64_t offset, uint64_t length) {
  // Bad peers are refused even when they would not be needed.
  absl::Status bad;
  std::vector<node::HostPort> peers = ParsePeers(peer_list, &bad);
  if (!bad.ok()) return bad;
  if (auto dir = node_.store().GetDirectory(id); dir.ok()) {
    store::ContentState st;  // the directory only: its files are not counted
    st.record.id = id;
    st.record.directory = *std::move(dir);
    return st;
  }
  auto local = node_.store().Stat(id);
  if (local.ok() && local->complete()) return local;
  if (!local.ok() && peer_list.empty() && !node_.session().ClusterReachable()) {
    // Nobody to ask: say so now rather than after the fetch timeout.
    return FetchNotFound(
        id, 0,
        absl::StrCat("no content ", id.Hex(),
                     " here, and the cluster DHT knows no node to ask (no "
                     "--bootstrap, or none reachable)"));
  }
  auto fetched = node_.session().Fetch(id, peers, offset, length, directory);
  if (!fetched.ok()) return fetched.status();
  const absl::Duration timeout = node_.options().fetch_timeout;
  absl::Status s = (*fetched)->WaitForMetadata(absl::Now() + timeout);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kDeadlineExceeded) {
      s = FetchNotFound(
          id, absl::ToDoubleSeconds(timeout),
          absl::StrCat(
              !peer_list.empty() ? "no peer provided " : "no provider of ",
              id.Hex(), !peer_list.empty() ? "" : " found", " within ",
              absl::FormatDuration(timeout)));
    }
    return s;
  }
  *events = *std::move(fetched);
  return node_.store().Stat(id);
}

grpc::Status ContentServiceImpl::Read(
    grpc::ServerContext* ctx, const v1::ReadRequest* request,
    grpc::ServerWriter<v1::ReadResponse>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("Read", id.status());
  std::optional<uint64_t> length;
  if (request->has_length()) length = request->length();
  std::shared_ptr<node::PieceEvents> arriving;
  std::optional<ContentId> directory;
  if (!request->path().empty()) {
    // A file of a directory: find the directory, then read the file.
    auto dir = StatOrFetch(*id, request->peers(), &arriving);
    if (!dir.ok()) return Finish("Read", dir.status());
    if (!dir->record.is_directory()) {
      return Finish("Read", absl::InvalidArgumentError(absl::StrCat(
                                "content ", id->Hex(),
                                " is a single file, not a directory: read "
                                "it without a path")));
    }
    const int64_t f = dir->record.directory->Find(request->path());
    if (f < 0) {
      return Finish("Read", absl::NotFoundError(absl::StrCat(
                                "directory ", id->Hex(), " has no file '",
                                request->path(), "'",
                                dir->record.directory->IsFolder(request->path())
                                    ? " (it is a folder)"
                                    : "")));
    }
    directory = *id;
    *id = dir->record.directory->file_id(static_cast<size_t>(f));
    node_.store().Touch(*directory).IgnoreError();
    arriving.reset();
  }
  auto st = StatOrFetch(*id, request->peers(), &arriving, directory,
                        request->offset(), length.value_or(UINT64_MAX));
  if (!st.ok()) return Finish("Read", st.status());
  if (st->record.is_directory()) {
    return Finish("Read",
                  absl::InvalidArgumentError(absl::StrCat(
                      "content ", id->Hex(),
                      " is a directory: read one of its files (ID/PATH; "
                      "shoal ls-tree lists them)")));
  }
  const uint64_t content_length = st->record.length;
  absl::Status s = node::ReadContent(
      node_.store(), node_.pool(), *id, request->offset(), length,
      [&](std::string&& data, uint64_t offset) {
        return WriteReadResponses(ctx, writer, std::move(data), offset,
                                  content_length);
      },
      arriving.get(), node_.options().fetch_timeout);
  return Finish("Read", s);
}

grpc::Status ContentServiceImpl::ListTree(
    grpc::ServerContext* ctx, const v1::ListTreeRequest* request,
    grpc::ServerWriter<v1::ListTreeResponse>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("ListTree", id.status());
  std::shared_ptr<node::PieceEvents> events;
  auto st = StatOrFetch(*id, request->peers(), &events);
  if (!st.ok()) return Finish("ListTree", st.status());
  if (!st->record.is_directory()) {
    return Finish("ListTree", absl::InvalidArgumentError(absl::StrCat(
                                  "content ", id->Hex(),
                                  " is a single file, not a directory")));
  }
  const chunk::Directory& dir = *st->record.directory;
  v1::ListTreeResponse out;
  constexpr int kPerMessage = 1000;
  for (size_t i = 0; i < dir.files().size(); ++i) {
    const chunk::DirectoryFile& f = dir.files()[i];
    v1::TreeEntry* e = out.add_entries();
    e->set_path(f.path);
    e->set_length(f.length);
    e->set_id(dir.file_id(i).Hex());
    auto fs = node_.store().Stat(dir.file_id(i));
    e->set_local(fs.ok() && fs->complete());
    if (out.entries_size() == kPerMessage || i + 1 == dir.files().size()) {
      if (!writer->Write(out)) return grpc::Status::OK;  // client went away
      out.Clear();
    }
  }
  return grpc::Status::OK;
}

grpc::Status ContentServiceImpl::Stat(grpc::ServerContext* ctx,
                                      const v1::StatRequest* request,
                                      v1::StatResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("Stat", id.status());
  auto st = node_.store().Stat(*id);
  if (!st.ok()) return Finish("Stat", st.status());
  FillContent(*st, response->mutable_content());
  if (auto t = node_.session().ContentTransfer(*id)) {
    v1::ContentInfo* c = response->mutable_content();
    c->set_fetching(true);
    c->set_download_rate(t->download_rate);
    c->set_num_peers(t->num_peers);
    if (t->eta_seconds) c->set_eta_seconds(*t->eta_seconds);
  }
  return grpc::Status::OK;
}

grpc::Status ContentServiceImpl::List(grpc::ServerContext* ctx,
                                      const v1::ListRequest*,
                                      v1::ListResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  for (const auto& st : node_.store().List())
    FillContent(st, response->add_contents());
  return grpc::Status::OK;
}

// Pins or unpins the content `id_text` names and describes it in `out`.
grpc::Status ContentServiceImpl::SetPinned(const char* method,
                                           const std::string& id_text,
                                           bool pinned, v1::ContentInfo* out) {
  auto id = ParseId(id_text);
  if (!id.ok()) return Finish(method, id.status());
  absl::Status s = node_.store().SetPinned(*id, pinned);
  if (!s.ok()) return Finish(method, s);
  auto st = node_.store().Stat(*id);
  if (!st.ok()) return Finish(method, st.status());
  FillContent(*st, out);
  return grpc::Status::OK;
}

grpc::Status ContentServiceImpl::Pin(grpc::ServerContext* ctx,
                                     const v1::PinRequest* request,
                                     v1::PinResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  return SetPinned("Pin", request->id(), true, response->mutable_content());
}

grpc::Status ContentServiceImpl::Unpin(grpc::ServerContext* ctx,
                                       const v1::UnpinRequest* request,
                                       v1::UnpinResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  return SetPinned("Unpin", request->id(), false, response->mutable_content());
}

grpc::Status ContentServiceImpl::Remove(grpc::ServerContext* ctx,
                                        const v1::RemoveRequest* request,
                                        v1::RemoveResponse*) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("Remove", id.status());
  return Finish("Remove", node_.RemoveContent(*id));
}

grpc::Status NodeServiceImpl::GetInfo(grpc::ServerContext* ctx,
                                      const v1::GetInfoRequest*,
                                      v1::NodeInfo* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  const node::NodeOptions& o = node_.options();
  response->set_node_id(node_.node_id());
  response->set_version(node::kVersion);
  response->set_listen_address(node_.listen_address().ToString());
  for (const node::HostPort& a : node_.listen_addresses())
    response->add_listen_addresses(a.ToString());
  {
    node::NodeStats& stats = node::NodeStats::Get();
    uint64_t in = 0, out = 0;
    for (node::TrafficKind k :
         {node::TrafficKind::kCdn, node::TrafficKind::kTorrent}) {
      in += stats.kind(k).bytes_received.load(std::memory_order_relaxed);
      out += stats.kind(k).bytes_sent.load(std::memory_order_relaxed);
    }
    response->set_bytes_received(in);
    response->set_bytes_sent(out);
  }
  {
    absl::MutexLock lock(&mu_);
    response->set_api_address(api_address_);
    response->set_gateway_address(gateway_address_);
  }
  response->set_data_dir(o.data_dir.string());
  response->set_uptime_seconds(absl::ToDoubleSeconds(node_.uptime()));
  response->set_hash_threads(static_cast<uint32_t>(node_.pool().size()));
  const auto [dht_public, dht_cluster] = node_.session().DhtNodes();
  response->set_dht_nodes_public(static_cast<uint32_t>(dht_public));
  response->set_dht_nodes_cluster(static_cast<uint32_t>(dht_cluster));
  response->set_num_peers(static_cast<uint32_t>(node_.session().NumPeers()));
  response->set_num_torrents(
      static_cast<uint32_t>(node_.session().ListTorrents().size()));
  for (const auto& hp : o.bootstrap) response->add_bootstrap(hp.ToString());
  for (const auto& hp : o.dht_routers) response->add_dht_routers(hp.ToString());
  store::StoreStats s = node_.store().Stats();
  v1::StoreInfo* si = response->mutable_store();
  si->set_capacity_bytes(s.capacity_bytes);
  si->set_used_bytes(s.used_bytes);
  si->set_reserved_bytes(s.reserved_bytes);
  si->set_num_contents(s.num_contents);
  si->set_num_chunks(s.num_chunks);
  si->set_data_loss_events(s.data_loss_events);
  si->set_evictions(s.evictions);
  return grpc::Status::OK;
}

grpc::Status NodeServiceImpl::GetConfig(grpc::ServerContext* ctx,
                                        const v1::GetConfigRequest*,
                                        v1::GetConfigResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  response->set_toml(node::ConfigToml(node_.options()));
  return grpc::Status::OK;
}

grpc::Status ContentServiceImpl::Preheat(
    grpc::ServerContext* ctx, const v1::PreheatRequest* request,
    grpc::ServerWriter<v1::PreheatProgress>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("Preheat", id.status());
  if (request->nodes() > 100) {
    return Finish("Preheat",
                  absl::InvalidArgumentError("nodes must be at most 100"));
  }
  if (request->timeout_seconds() < 0 || request->timeout_seconds() > 86400) {
    return Finish("Preheat", absl::InvalidArgumentError(
                                 "timeout must be 0 to 86400 seconds"));
  }
  const int nodes =
      request->nodes() > 0 ? static_cast<int>(request->nodes()) : 3;
  const absl::Duration timeout = request->timeout_seconds() > 0
                                     ? absl::Seconds(request->timeout_seconds())
                                     : absl::Seconds(300);
  absl::Status s = node_.session().Preheat(*id, nodes, timeout,
                                           [&](const node::PreheatStatus& st) {
                                             if (ctx->IsCancelled())
                                               return false;
                                             v1::PreheatProgress p;
                                             p.set_node(st.node);
                                             p.set_node_id(st.node_id);
                                             p.set_state(st.state);
                                             p.set_done(st.done);
                                             p.set_total(st.total);
                                             return writer->Write(p);
                                           });
  return Finish("Preheat", s);
}

grpc::Status ContentServiceImpl::FindProviders(
    grpc::ServerContext* ctx, const v1::FindProvidersRequest* request,
    v1::FindProvidersResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("FindProviders", id.status());
  if (request->timeout_seconds() < 0 || request->timeout_seconds() > 600) {
    return Finish("FindProviders", absl::InvalidArgumentError(
                                       "timeout must be 0 to 600 seconds"));
  }
  const absl::Duration timeout = request->timeout_seconds() > 0
                                     ? absl::Seconds(request->timeout_seconds())
                                     : absl::Seconds(10);
  auto providers = node_.session().FindProviders(*id, timeout);
  if (!providers.ok()) return Finish("FindProviders", providers.status());
  for (const std::string& p : *providers) response->add_providers(p);
  return grpc::Status::OK;
}

namespace {

// The kind's own fields (Event.payload); torrent kinds have none.
void SetPayload(const node::Event& e, v1::Event& out) {
  using node::EventKind;
  switch (e.kind) {
    case EventKind::kContentAdded:
    case EventKind::kContentRemoved:
    case EventKind::kContentEvicted:
    case EventKind::kContentPinned:
    case EventKind::kContentUnpinned: {
      v1::ContentEvent* c = out.mutable_content();
      c->set_id(e.id);
      c->set_name(e.name);
      c->set_length(e.total_bytes);
      c->set_reason(e.message);
      break;
    }
    case EventKind::kFetchStarted: {
      v1::FetchStarted* f = out.mutable_fetch_started();
      f->set_id(e.id);
      f->set_providers(e.providers);
      break;
    }
    case EventKind::kFetchProgress: {
      v1::FetchProgress* f = out.mutable_fetch_progress();
      f->set_id(e.id);
      f->set_bytes(e.bytes);
      f->set_total_bytes(e.total_bytes);
      f->set_download_rate(e.download_rate);
      f->set_num_peers(e.num_peers);
      if (e.eta_seconds) f->set_eta_seconds(*e.eta_seconds);
      break;
    }
    case EventKind::kFetchCompleted: {
      v1::FetchCompleted* f = out.mutable_fetch_completed();
      f->set_id(e.id);
      f->set_bytes(e.bytes);
      f->set_seconds(e.seconds);
      f->set_average_rate(e.download_rate);
      for (const auto& [address, bytes] : e.bytes_per_provider)
        (*f->mutable_bytes_per_provider())[address] += bytes;
      break;
    }
    case EventKind::kFetchFailed: {
      v1::FetchFailed* f = out.mutable_fetch_failed();
      f->set_id(e.id);
      f->set_reason(e.message);
      break;
    }
    case EventKind::kPeerBanned: {
      v1::PeerBanned* p = out.mutable_peer_banned();
      p->set_address(e.address);
      p->set_reason(e.message);
      p->set_id(e.id);
      break;
    }
    case EventKind::kDataLoss: {
      v1::DataLoss* d = out.mutable_data_loss();
      d->set_id(e.id);
      d->set_piece(e.piece);
      d->set_detail(e.message);
      break;
    }
    case EventKind::kDhtState: {
      v1::DhtState* d = out.mutable_dht_state();
      d->set_network(e.network);
      d->set_state(e.state);
      d->set_nodes(e.nodes);
      break;
    }
    default:
      break;
  }
}

}  // namespace

grpc::Status NodeServiceImpl::Events(grpc::ServerContext* ctx,
                                     const v1::EventsRequest* request,
                                     grpc::ServerWriter<v1::Event>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  node::EventBus& bus = node_.session().events();
  uint64_t after = request->replay() ? 0 : bus.last_seq();
  while (!ctx->IsCancelled()) {
    uint64_t missed = 0;
    // Wake now and then to notice a cancelled client.
    for (const node::Event& e :
         bus.Wait(after, absl::Milliseconds(500), &missed)) {
      v1::Event out;
      out.set_seq(e.seq);
      const int64_t us = absl::ToUnixMicros(e.time);
      out.mutable_time()->set_seconds(us / 1000000);
      out.mutable_time()->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
      out.set_kind(node::EventKindName(e.kind));
      out.set_id(e.id);
      out.set_name(e.name);
      out.set_state(e.state);
      out.set_progress(e.progress);
      out.set_download_rate(e.download_rate);
      out.set_upload_rate(e.upload_rate);
      out.set_num_peers(e.num_peers);
      if (e.eta_seconds) out.set_eta_seconds(*e.eta_seconds);
      out.set_message(e.message);
      out.set_missed(missed);
      SetPayload(e, out);
      missed = 0;
      after = e.seq;
      if (!writer->Write(out)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

}  // namespace shoal::api
