#include "node/node.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/hex.h"
#include "base/ip_filter.h"
#include "base/status_macros.h"
#include "dht/cluster_auth.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

constexpr char kIdentityKey[] = "identity.ed25519";

}  // namespace

Node::Node(NodeOptions options) : options_(std::move(options)) {}

Node::~Node() {
  // The session's swarms hand work to the pool and the pool posts results back:
  // stop the network thread, drain the pool, then free both.
  if (session_) session_->Stop();
  pool_.reset();
  session_.reset();
  store_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  SHOAL_RETURN_IF_ERROR(Validate(options));
  if (sodium_init() < 0)
    return absl::InternalError("libsodium failed to initialize");
  std::unique_ptr<Node> node(new Node(std::move(options)));
  SHOAL_RETURN_IF_ERROR(node->Init());
  return node;
}

absl::Status Node::Init() {
  const auto& dir = options_.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create data dir ", dir.string(), ": ", ec.message()));
  }
  // One shoald per data dir: an advisory lock that the kernel drops when the
  // process dies.
  std::string lock_path = (dir / "LOCK").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = ::pread(lock_fd_, pid, sizeof(pid) - 1, 0);
    std::string holder =
        n > 0 ? absl::StrCat(" (pid ", std::string(pid, strnlen(pid, n)), ")")
              : std::string();
    return absl::UnavailableError(absl::StrCat(
        "data dir ", dir.string(), " is in use by another shoald", holder));
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(lock_fd_, 0) == 0) {
    (void)!::pwrite(lock_fd_, pid.data(), pid.size(), 0);
  }
  // Spooled adds that a crash left behind.
  std::filesystem::remove_all(spool_dir(), ec);

  store::StoreOptions so;
  so.dir = dir / "db";
  so.capacity_bytes = options_.capacity_bytes;
  SHOAL_ASSIGN_OR_RETURN(store_, store::ChunkStore::Open(so));

  // Identity: an Ed25519 key pair made on first start and kept in the store.
  auto secret = store_->GetState(kIdentityKey);
  if (!secret.ok() && secret.status().code() != absl::StatusCode::kNotFound) {
    return secret.status();
  }
  if (!secret.ok() || secret->size() != crypto_sign_SECRETKEYBYTES) {
    std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
    std::string sk(crypto_sign_SECRETKEYBYTES, '\0');
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                        reinterpret_cast<unsigned char*>(sk.data()));
    SHOAL_RETURN_IF_ERROR(store_->PutState(kIdentityKey, sk));
    secret = sk;
  }
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_ed25519_sk_to_pk(
      reinterpret_cast<unsigned char*>(pk.data()),
      reinterpret_cast<const unsigned char*>(secret->data()));
  node_id_ = HexEncode(pk);

  pool_ = std::make_unique<ThreadPool>(options_.hash_threads > 0
                                           ? options_.hash_threads
                                           : ThreadPool::DefaultSize());
  SessionOptions session_options;
  session_options.client_name = absl::StrCat("Shoal ", kVersion);
  session_options.default_save_path = dir / "downloads";
  session_options.dht_routers = options_.dht_routers;
  session_options.bootstrap = options_.bootstrap;
  session_options.encryption = options_.encryption;
  session_options.lsd = options_.lsd;
  session_options.download_memory_bytes = options_.download_memory_bytes;
  session_options.utp = options_.utp;
  session_options.tcp = options_.tcp;
  session_options.active_downloads = options_.active_downloads;
  session_options.active_seeds = options_.active_seeds;
  session_options.peer_retry_seconds = options_.peer_retry_seconds;
  session_options.seed_limits.share_ratio = options_.share_ratio_limit;
  session_options.seed_limits.seed_time = options_.seed_time_limit;
  if (!options_.cluster_key_file.empty()) {
    std::ifstream in(options_.cluster_key_file);
    std::string text;
    if (!in || !std::getline(in, text)) {
      return absl::NotFoundError(absl::StrCat(
          "cannot read cluster key file ", options_.cluster_key_file.string()));
    }
    auto key = dht::ParseClusterKey(text);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster key file ", options_.cluster_key_file.string(),
                       ": ", std::string(key.status().message())));
    }
    session_options.cluster_key = *key;
  }
  if (!options_.ip_filter.empty()) {
    IpFilter::ParseReport report;
    SHOAL_ASSIGN_OR_RETURN(IpFilter filter,
                           IpFilter::Load(options_.ip_filter, &report));
    spdlog::info("ip_filter {}: {} blocked ranges ({} after merging)",
                 options_.ip_filter.string(), report.ranges, filter.size());
    if (report.malformed > 0) {
      spdlog::warn("ip_filter {}: {} malformed lines skipped, the first at {}",
                   options_.ip_filter.string(), report.malformed,
                   report.first_malformed);
    }
    session_options.ip_filter =
        std::make_shared<const IpFilter>(std::move(filter));
  }
  session_ = std::make_unique<Session>(*store_, *pool_, session_options);
  // The store's changes are events too (before the session starts: nothing
  // else uses the store yet).
  store_->set_observer([bus = &session_->events()](const store::StoreEvent& s) {
    Event e;
    switch (s.kind) {
      case store::StoreEvent::Kind::kAdded:
        e.kind = EventKind::kContentAdded;
        break;
      case store::StoreEvent::Kind::kRemoved:
        e.kind = EventKind::kContentRemoved;
        break;
      case store::StoreEvent::Kind::kEvicted:
        e.kind = EventKind::kContentEvicted;
        break;
      case store::StoreEvent::Kind::kPinned:
        e.kind = EventKind::kContentPinned;
        break;
      case store::StoreEvent::Kind::kUnpinned:
        e.kind = EventKind::kContentUnpinned;
        break;
      case store::StoreEvent::Kind::kDataLoss:
        e.kind = EventKind::kDataLoss;
        break;
    }
    e.id = s.id.Hex();
    e.name = s.name;
    e.total_bytes = s.length;
    e.piece = s.piece;
    e.message = s.reason;
    bus->Publish(std::move(e));
  });
  SHOAL_ASSIGN_OR_RETURN(bound_listen_, session_->Start(options_.listen));
  return absl::OkStatus();
}

absl::Status Node::RemoveContent(const chunk::ContentId& id) {
  std::vector<chunk::ContentId> files;
  if (auto dir = store_->GetDirectory(id); dir.ok()) files = (*dir)->file_ids();
  SHOAL_RETURN_IF_ERROR(store_->Remove(id));
  // What the store no longer holds is no longer served or provided.
  std::vector<chunk::ContentId> gone{id};
  for (const chunk::ContentId& f : files)
    if (!store_->Brief(f, /*touch=*/false)) gone.push_back(f);
  session_->Forget(gone);
  return absl::OkStatus();
}

}  // namespace shoal::node
