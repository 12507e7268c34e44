#include "api/torrent_service.h"

#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "api/read_stream.h"
#include "node/options.h"
#include "node/session.h"

namespace shoal::api {
namespace {

void Fill(const node::TorrentStatus& s, v1::TorrentStatus* out) {
  out->set_id(s.id);
  out->set_info_hash_v1(s.info_hash_v1);
  out->set_info_hash_v2(s.info_hash_v2);
  out->set_name(s.name);
  out->set_state(node::TorrentStateName(s.state));
  out->set_error(s.error);
  out->set_save_path(s.save_path);
  out->set_in_store(s.in_store);
  out->set_sequential(s.sequential);
  out->set_progress(s.progress);
  out->set_total_size(s.total_size);
  out->set_wanted_size(s.wanted_size);
  out->set_bytes_done(s.bytes_done);
  out->set_downloaded(s.downloaded);
  out->set_uploaded(s.uploaded);
  out->set_download_rate(s.download_rate);
  out->set_upload_rate(s.upload_rate);
  out->set_num_peers(s.num_peers);
  out->set_num_seeds(s.num_seeds);
  out->set_known_peers(s.known_peers);
  out->set_num_pieces(s.num_pieces);
  out->set_pieces_done(s.pieces_done);
  out->set_piece_length(s.piece_length);
  out->mutable_added()->set_seconds(s.added_time);
  out->set_pieces(s.pieces);
  for (size_t i = 0; i < s.trackers.size(); ++i) {
    v1::TrackerStatus* t = out->add_trackers();
    t->set_url(s.trackers[i]);
    t->set_error(s.tracker_errors[i]);
  }
  if (s.tracker_seeders) out->set_tracker_seeders(*s.tracker_seeders);
  if (s.tracker_leechers) out->set_tracker_leechers(*s.tracker_leechers);
  if (s.tracker_completed) out->set_tracker_completed(*s.tracker_completed);
  out->set_share_ratio(s.share_ratio);
  out->set_seeding_seconds(s.seeding_seconds);
  out->set_stopped_by(s.stopped_by);
  out->set_super_seeding(s.super_seeding);
  if (s.eta_seconds) out->set_eta_seconds(*s.eta_seconds);
  for (const node::WebSeedStatus& w : s.web_seeds) {
    v1::WebSeedStatus* p = out->add_web_seeds();
    p->set_url(w.url);
    p->set_state(w.state);
    p->set_error(w.error);
    p->set_downloaded(w.downloaded);
  }
}

void FillFiles(const std::vector<node::TorrentFileInfo>& files,
               size_t num_entries, v1::TorrentFilesResponse* out) {
  for (const auto& f : files) {
    v1::TorrentFile* p = out->add_files();
    p->set_index(static_cast<uint32_t>(f.index));
    p->set_path(f.path);
    p->set_size(f.size);
    p->set_priority(f.priority);
    p->set_bytes_done(f.bytes_done);
  }
  out->set_num_entries(static_cast<uint32_t>(num_entries));
}

}  // namespace

grpc::Status TorrentServiceImpl::StatusOf(const std::string& id,
                                          v1::TorrentStatus* response) {
  auto st = node_.session().GetTorrent(id);
  if (!st.ok()) return ToGrpc(st.status());
  Fill(*st, response);
  return grpc::Status::OK;
}

grpc::Status TorrentServiceImpl::Add(grpc::ServerContext* ctx,
                                     const v1::AddTorrentRequest* request,
                                     v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  node::AddTorrentParams p;
  switch (request->source_case()) {
    case v1::AddTorrentRequest::kTorrent:
      p.torrent_bytes = request->torrent();
      if (p.torrent_bytes.empty())
        return ToGrpc(absl::InvalidArgumentError("the .torrent is empty"));
      break;
    case v1::AddTorrentRequest::kMagnet:
      p.magnet = request->magnet();
      break;
    default:
      return ToGrpc(absl::InvalidArgumentError(
          "give a .torrent file's bytes or a magnet link"));
  }
  p.save_path = request->save_path();
  if (!p.save_path.empty() && !p.save_path.is_absolute()) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat(
        "save path must be absolute, got '", request->save_path(), "'")));
  }
  if (!p.save_path.empty()) {
    auto resolved = node_.path_roots().Resolve(p.save_path, "save path");
    if (!resolved.ok()) return ToGrpc(resolved.status());
    p.save_path = *std::move(resolved);
  }
  p.paused = request->paused();
  p.sequential = request->sequential();
  p.in_store = request->in_store();
  if (p.in_store && !p.save_path.empty()) {
    return ToGrpc(absl::InvalidArgumentError(
        "a torrent kept in the chunk store has no save path"));
  }
  for (const std::string& peer : request->peers()) {
    auto hp = node::HostPort::Parse(peer);
    if (!hp.ok()) return ToGrpc(hp.status());
    p.peers.push_back(*hp);
  }
  auto st = node_.session().AddTorrent(p);
  if (!st.ok()) return ToGrpc(st.status());
  Fill(*st, response);
  return grpc::Status::OK;
}

grpc::Status TorrentServiceImpl::ReadFile(
    grpc::ServerContext* ctx, const v1::ReadTorrentFileRequest* request,
    grpc::ServerWriter<v1::ReadResponse>* writer) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  std::optional<uint64_t> length;
  if (request->has_length()) length = request->length();
  uint64_t file_length = 0;
  if (auto files = node_.session().TorrentFiles(request->id()); files.ok()) {
    for (const node::TorrentFileInfo& f : *files)
      if (f.index == request->file_index()) file_length = f.size;
  }
  const absl::Duration wait = request->has_wait_seconds()
                                  ? absl::Seconds(request->wait_seconds())
                                  : node_.options().fetch_timeout;
  return ToGrpc(node_.session().ReadTorrentFile(
      request->id(), request->file_index(), request->offset(), length,
      [&](std::string&& data, uint64_t offset) {
        return WriteReadResponses(ctx, writer, std::move(data), offset,
                                  file_length);
      },
      wait));
}

grpc::Status TorrentServiceImpl::List(grpc::ServerContext* ctx,
                                      const v1::ListTorrentsRequest*,
                                      v1::ListTorrentsResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  for (const auto& s : node_.session().ListTorrents())
    Fill(s, response->add_torrents());
  return grpc::Status::OK;
}

grpc::Status TorrentServiceImpl::GetStatus(grpc::ServerContext* ctx,
                                           const v1::TorrentRequest* request,
                                           v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::Pause(grpc::ServerContext* ctx,
                                       const v1::TorrentRequest* request,
                                       v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s = node_.session().PauseTorrent(request->id());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::Resume(grpc::ServerContext* ctx,
                                        const v1::TorrentRequest* request,
                                        v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s = node_.session().ResumeTorrent(request->id());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::Remove(grpc::ServerContext* ctx,
                                        const v1::RemoveTorrentRequest* request,
                                        v1::RemoveTorrentResponse*) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  return ToGrpc(
      node_.session().RemoveTorrent(request->id(), request->delete_data()));
}

grpc::Status TorrentServiceImpl::Peers(grpc::ServerContext* ctx,
                                       const v1::TorrentRequest* request,
                                       v1::TorrentPeersResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto peers = node_.session().TorrentPeers(request->id());
  if (!peers.ok()) return ToGrpc(peers.status());
  for (const node::PeerInfo& i : *peers) {
    v1::PeerStatus* p = response->add_peers();
    p->set_address(i.address);
    p->set_client(i.client);
    p->set_incoming(i.incoming);
    p->set_seed(i.seed);
    p->set_progress(i.progress);
    p->set_am_choking(i.am_choking);
    p->set_am_interested(i.am_interested);
    p->set_peer_choking(i.peer_choking);
    p->set_peer_interested(i.peer_interested);
    p->set_snubbed(i.snubbed);
    p->set_download_rate(i.download_rate);
    p->set_upload_rate(i.upload_rate);
    p->set_downloaded(i.downloaded);
    p->set_uploaded(i.uploaded);
    p->set_requests(i.requests_out);
    p->set_transport(i.transport);
    p->set_encrypted(i.encrypted);
  }
  return grpc::Status::OK;
}

grpc::Status TorrentServiceImpl::Files(grpc::ServerContext* ctx,
                                       const v1::TorrentRequest* request,
                                       v1::TorrentFilesResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto files = node_.session().TorrentFiles(request->id());
  if (!files.ok()) return ToGrpc(files.status());
  auto entries = node_.session().TorrentFileEntries(request->id());
  FillFiles(*files, entries.value_or(0), response);
  return grpc::Status::OK;
}

grpc::Status TorrentServiceImpl::SetFilePriorities(
    grpc::ServerContext* ctx, const v1::SetFilePrioritiesRequest* request,
    v1::TorrentFilesResponse* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  if (request->file_index_size() != request->file_priority_size()) {
    return ToGrpc(absl::InvalidArgumentError(
        "file_index and file_priority must pair up"));
  }
  std::vector<uint8_t> priorities;
  if (request->priorities_size() > 0) {
    if (request->file_index_size() > 0) {
      return ToGrpc(absl::InvalidArgumentError(
          "give either every priority or index/priority pairs"));
    }
    for (uint32_t p : request->priorities())
      priorities.push_back(static_cast<uint8_t>(std::min<uint32_t>(p, 255)));
  } else {
    // Pairs: start from the current priorities.
    auto entries = node_.session().TorrentFileEntries(request->id());
    if (!entries.ok()) return ToGrpc(entries.status());
    auto files = node_.session().TorrentFiles(request->id());
    if (!files.ok()) return ToGrpc(files.status());
    priorities.assign(*entries, 4);
    for (const auto& f : *files) priorities[f.index] = f.priority;
    for (int k = 0; k < request->file_index_size(); ++k) {
      const uint32_t i = request->file_index(k);
      if (i >= priorities.size()) {
        return ToGrpc(
            absl::InvalidArgumentError(absl::StrCat("no file with index ", i)));
      }
      priorities[i] = static_cast<uint8_t>(
          std::min<uint32_t>(request->file_priority(k), 255));
    }
  }
  absl::Status s =
      node_.session().SetFilePriorities(request->id(), std::move(priorities));
  if (!s.ok()) return ToGrpc(s);
  v1::TorrentRequest r;
  r.set_id(request->id());
  return Files(ctx, &r, response);
}

grpc::Status TorrentServiceImpl::SetSequential(
    grpc::ServerContext* ctx, const v1::SetSequentialRequest* request,
    v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s =
      node_.session().SetSequential(request->id(), request->sequential());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::SetSuperSeeding(
    grpc::ServerContext* ctx, const v1::SetSuperSeedingRequest* request,
    v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s =
      node_.session().SetSuperSeeding(request->id(), request->on());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::Recheck(grpc::ServerContext* ctx,
                                         const v1::TorrentRequest* request,
                                         v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s = node_.session().RecheckTorrent(request->id());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::Reannounce(grpc::ServerContext* ctx,
                                            const v1::TorrentRequest* request,
                                            v1::TorrentStatus* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  absl::Status s = node_.session().ReannounceTorrent(request->id());
  if (!s.ok()) return ToGrpc(s);
  return StatusOf(request->id(), response);
}

grpc::Status TorrentServiceImpl::SetRateLimits(grpc::ServerContext* ctx,
                                               const v1::RateLimits* request,
                                               v1::RateLimits* response) {
  if (auto denied = auth_.Check(ctx, Role::kAdmin); !denied.ok()) return denied;
  // Above a petabyte per second a limit means nothing; such a value is
  // almost certainly a negative number gone through an unsigned type.
  constexpr uint64_t kMaxRate = uint64_t{1} << 50;
  if (request->download_bytes_per_second() > kMaxRate ||
      request->upload_bytes_per_second() > kMaxRate) {
    return ToGrpc(absl::InvalidArgumentError(
        "rate limits must be at most 2^50 bytes per second (0: unlimited)"));
  }
  node::SeedLimits seed;
  if (request->has_share_ratio_limit()) {
    const double r = request->share_ratio_limit();
    if (!(r >= 0 && r <= node::kMaxShareRatioLimit)) {
      return ToGrpc(absl::InvalidArgumentError(
          "share_ratio_limit must be in 0..1000000 (0: no limit)"));
    }
    seed.share_ratio = r;
  }
  if (request->has_seed_time_limit()) {
    if (request->seed_time_limit() > node::kMaxSeedTimeLimit) {
      return ToGrpc(absl::InvalidArgumentError(
          "seed_time_limit must be at most 315360000 seconds (0: no limit)"));
    }
    seed.seed_time = request->seed_time_limit();
  }
  absl::Status s = node_.session().SetRateLimits(
      request->id(), request->download_bytes_per_second(),
      request->upload_bytes_per_second());
  if (!s.ok()) return ToGrpc(s);
  // Only when asked: setting a seeding limit also lets a torrent stopped at
  // one stop again under the new one.
  if (seed.share_ratio || seed.seed_time) {
    s = node_.session().SetSeedLimits(request->id(), seed);
    if (!s.ok()) return ToGrpc(s);
  }
  v1::TorrentRequest r;
  r.set_id(request->id());
  return GetRateLimits(ctx, &r, response);
}

grpc::Status TorrentServiceImpl::GetRateLimits(
    grpc::ServerContext* ctx, const v1::TorrentRequest* request,
    v1::RateLimits* response) {
  if (auto denied = auth_.Check(ctx, Role::kRead); !denied.ok()) return denied;
  auto limits = node_.session().GetRateLimits(request->id());
  if (!limits.ok()) return ToGrpc(limits.status());
  response->set_id(request->id());
  response->set_download_bytes_per_second(limits->download);
  response->set_upload_bytes_per_second(limits->upload);
  response->set_share_ratio_limit(limits->seed.share_ratio.value_or(0));
  response->set_seed_time_limit(limits->seed.seed_time.value_or(0));
  return grpc::Status::OK;
}

}  // namespace shoal::api
