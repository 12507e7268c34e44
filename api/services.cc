#include "api/services.h"

#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "api/read_stream.h"
#include "base/hex.h"
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
  auto state = node::AddFile(
      node_.store(), node_.pool(), *resolved,
      request->name().empty() ? path.filename().string() : request->name());
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

grpc::Status ContentServiceImpl::Read(
    grpc::ServerContext* ctx, const v1::ReadRequest* request,
    grpc::ServerWriter<v1::ReadResponse>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto id = ParseId(request->id());
  if (!id.ok()) return Finish("Read", id.status());
  std::optional<uint64_t> length;
  if (request->has_length()) length = request->length();
  std::shared_ptr<node::PieceEvents> arriving;
  auto local = node_.store().Stat(*id);
  if (!(local.ok() && local->complete())) {
    if (!local.ok() && request->peers_size() == 0 &&
        !node_.session().ClusterReachable()) {
      // Nobody to ask: say so now rather than after the fetch timeout.
      node::NodeStats::Get().FetchFinished(node::FetchResult::kNotFound, 0);
      return Finish("Read", absl::NotFoundError(absl::StrCat(
                                "no content ", id->Hex(),
                                " here, and the cluster DHT knows no node to "
                                "ask (no --bootstrap, or none reachable)")));
    }
    std::vector<node::HostPort> peers;
    for (const std::string& p : request->peers()) {
      auto hp = node::HostPort::Parse(p);
      if (!hp.ok()) return Finish("Read", hp.status());
      peers.push_back(*std::move(hp));
    }
    auto events = node_.session().Fetch(*id, peers, request->offset(),
                                        length.value_or(UINT64_MAX));
    if (!events.ok()) return Finish("Read", events.status());
    arriving = *std::move(events);
    const absl::Duration timeout = node_.options().fetch_timeout;
    absl::Status s = arriving->WaitForMetadata(absl::Now() + timeout);
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kDeadlineExceeded) {
        node::NodeStats::Get().FetchFinished(node::FetchResult::kNotFound,
                                             absl::ToDoubleSeconds(timeout));
        s = absl::NotFoundError(absl::StrCat(
            request->peers_size() > 0 ? "no peer provided " : "no provider of ",
            id->Hex(), request->peers_size() > 0 ? "" : " found", " within ",
            absl::FormatDuration(timeout)));
      }
      return Finish("Read", s);
    }
  }
  uint64_t content_length = 0;
  if (auto st = node_.store().Stat(*id); st.ok())
    content_length = st->record.length;
  absl::Status s = node::ReadContent(
      node_.store(), node_.pool(), *id, request->offset(), length,
      [&](std::string&& data, uint64_t offset) {
        return WriteReadResponses(ctx, writer, std::move(data), offset,
                                  content_length);
      },
      arriving.get(), node_.options().fetch_timeout);
  return Finish("Read", s);
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
  absl::Status s = node_.store().Remove(*id);
  if (s.ok()) node_.session().Forget(*id);
  return Finish("Remove", s);
}

grpc::Status NodeServiceImpl::GetInfo(grpc::ServerContext* ctx,
                                      const v1::GetInfoRequest*,
                                      v1::NodeInfo* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  const node::NodeOptions& o = node_.options();
  response->set_node_id(node_.node_id());
  response->set_version(node::kVersion);
  response->set_listen_address(node_.listen_address().ToString());
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
      out.set_message(e.message);
      out.set_missed(missed);
      missed = 0;
      after = e.seq;
      if (!writer->Write(out)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

}  // namespace shoal::api
