#include "node/node.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>.
#include <boost/asio.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/hex.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"

namespace shoal::node {
namespace {

namespace asio = boost::asio;
constexpr char kIdentityKey[] = "identity.ed25519";

}  // namespace

// The network thread and the sockets it owns. Until the peer wire protocol runs
// on it, it keeps the peer port bound (so two nodes cannot share it) and closes
// incoming connections.
class Node::Network {
 public:
  Network() : acceptor_(io_), udp_(io_), work_(asio::make_work_guard(io_)) {}

  ~Network() {
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  absl::StatusOr<HostPort> Bind(const HostPort& listen) {
    boost::system::error_code ec;
    asio::ip::address addr = asio::ip::make_address(listen.host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address must be an IP address, got '", listen.host, "'"));
    }
    asio::ip::tcp::endpoint ep(addr, listen.port);
    auto taken = [&](std::string_view proto,
                     const boost::system::error_code& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", listen.ToString(), " (",
                       std::string(proto), "): ", e.message()));
    };
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return taken("tcp", ec);
    uint16_t port = acceptor_.local_endpoint().port();
    asio::ip::udp::endpoint uep(addr, port);
    udp_.open(uep.protocol(), ec);
    if (!ec) udp_.bind(uep, ec);
    if (ec) return taken("udp", ec);
    HostPort bound = listen;
    bound.port = port;
    return bound;
  }

  void Run() {
    Accept();
    Receive();
    thread_ = std::thread([this] { io_.run(); });
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec,
                                  asio::ip::tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        boost::system::error_code ignored;
        spdlog::debug(
            "peer connection from {} closed: the peer protocol is not enabled",
            socket.remote_endpoint(ignored).address().to_string());
        socket.close(ignored);
      }
      Accept();
    });
  }

  void Receive() {
    udp_.async_receive_from(asio::buffer(datagram_), sender_,
                            [this](boost::system::error_code ec, size_t) {
                              if (ec == asio::error::operation_aborted) return;
                              Receive();
                            });
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::udp::socket udp_;
  asio::ip::udp::endpoint sender_;
  std::array<char, 1500> datagram_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

Node::Node(NodeOptions options) : options_(std::move(options)) {}

Node::~Node() {
  network_.reset();
  pool_.reset();
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
  network_ = std::make_unique<Network>();
  SHOAL_ASSIGN_OR_RETURN(bound_listen_, network_->Bind(options_.listen));
  network_->Run();
  return absl::OkStatus();
}

}  // namespace shoal::node
