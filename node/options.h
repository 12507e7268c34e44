// The node's configuration: typed, filled from a TOML file and then from
// command-line flags (flags win), and validated once at startup.
//
// TOML keys (all optional):
//   data_dir = "/var/lib/shoal"
//   api = "127.0.0.1:7080"
//   listen = "0.0.0.0:6881"
//   gateway = "127.0.0.1:8080"   # HTTP gateway; off unless set
//   bootstrap = ["10.0.0.2:6881"]
//   dht_routers = ["router.bittorrent.com:6881"]
//   capacity = "100GiB"          # or an integer number of bytes; 0 = unlimited
//   download_memory = "32MiB"    # downloaded bytes held in memory, all
//                                # downloads together (requested, arriving,
//                                # waiting to be written); 0 = no bound
//   hash_threads = 0             # 0 = one per core
//   log_level = "info"           # trace, debug, info, warn, error, critical,
//   off
//   log_format = "text"          # or "json": one JSON object per line
//   api_token_file = "/etc/shoal/api-tokens"   # tokens (and roles) of the API
//   api_insecure = false         # allow a non-loopback API without tokens
//   api_tls_cert = "/etc/shoal/api.crt"        # serve the API over TLS
//   api_tls_key = "/etc/shoal/api.key"
//   api_tls_client_ca = "/etc/shoal/clients-ca.crt"   # require client certs
//   path_roots = ["/var/lib/shoal"]  # confine add-by-path and save paths
//   cluster_key_file = "/etc/shoal/cluster.key"  # authenticates the cluster
//   DHT
//   ip_filter = "/etc/shoal/ipfilter.dat"  # peers never accepted or dialed
//   encryption = "prefer"        # torrents' outgoing peers: prefer|require|off
//   lsd = true                   # Local Service Discovery (BEP 14), torrents
//   utp = true                   # torrents' peers over µTP (BEP 29)
//   tcp = true                   # torrents' peers over TCP
// clang-format off
//   share_ratio_limit = 2.0      # a seeding torrent stops at this ratio; 0: never
//   seed_time_limit = 86400      # ... or after this many seconds seeding; 0: never
//   active_downloads = 3         # the torrent queue; 0: no limit
//   active_seeds = 5
//   peer_retry_seconds = 60      # a peer that went, or failed, is dialed again
//   metrics = "127.0.0.1:9090"   # /metrics, /healthz, /readyz; off unless set
//   gateway_threads = 0          # 0: one per core
// clang-format on
//   gateway_max_connections = 20000
//   gateway_header_timeout = 10  # seconds for a request's header to arrive
//   gateway_idle_timeout = 60    # seconds a keep-alive connection may idle
//   gateway_max_header_bytes = 16384
//   gateway_max_fetches = 64     # fetches on miss at once; more get 503
//   gateway_cache = "64MiB"      # verified pieces kept for readers
//   gateway_torrents = false     # serve /torrent/<id>/<path>
#ifndef SHOAL_NODE_OPTIONS_H_
#define SHOAL_NODE_OPTIONS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shoal::node {

// A host and port as given ("127.0.0.1:7080", "[::1]:6881",
// "example.org:6881").
struct HostPort {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;
  // INVALID_ARGUMENT with the reason for anything but HOST:PORT with a port in
  // 0..65535.
  static absl::StatusOr<HostPort> Parse(std::string_view text);
  // Parse, and the host must be an IP address: a peer to dial (no name is
  // looked up).
  static absl::StatusOr<HostPort> ParsePeer(std::string_view text);
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// The public DHT's default bootstrap routers.
std::vector<HostPort> DefaultDhtRouters();

// Outgoing connections of torrents: kPrefer tries the encrypted handshake
// (offering RC4 or plaintext after it) and falls back to plaintext if it
// fails; kRequire offers RC4 only and never falls back; kOff is plaintext.
enum class Encryption { kPrefer, kRequire, kOff };
// "prefer", "require" or "off".
absl::StatusOr<Encryption> ParseEncryption(std::string_view name);

// The largest seeding limits accepted (config, flags and the API).
inline constexpr double kMaxShareRatioLimit = 1e6;
inline constexpr uint64_t kMaxSeedTimeLimit = 10ull * 365 * 24 * 3600;
// peer_retry_seconds at most: a day.
inline constexpr int kMaxPeerRetrySeconds = 24 * 3600;

// At most one IPv4 and one IPv6 address (NodeOptions::listen).
absl::Status ValidateListen(const std::vector<HostPort>& listen);

struct NodeOptions {
  std::filesystem::path data_dir;
  HostPort api{"127.0.0.1", 7080};
  // The peer port's addresses, TCP and UDP: at most one IPv4 and one IPv6
  // (dual-stack: each family its own sockets, DHT tables and µTP). The first
  // is the node's primary address. A host without IPv6 skips the IPv6
  // wildcard with a warning.
  std::vector<HostPort> listen{{"0.0.0.0", 6881}, {"::", 6881}};
  // Cluster DHT bootstrap nodes (other nodes' listen addresses).
  std::vector<HostPort> bootstrap;
  // Public DHT bootstrap routers.
  std::vector<HostPort> dht_routers = DefaultDhtRouters();
  // HTTP gateway address; none by default.
  std::optional<HostPort> gateway;
  // Bytes of chunk data to keep; 0 = unlimited.
  uint64_t capacity_bytes = 0;
  // Downloaded bytes all fetches and torrents together hold in memory at
  // once (node/download_budget.h); 0 = no bound.
  uint64_t download_memory_bytes = 32 << 20;
  // Hashing/disk threads; 0 = one per core.
  int hash_threads = 0;
  std::string log_level = "info";
  // How long a fetch waits for a peer to deliver the metadata, and then for
  // each next piece.
  absl::Duration fetch_timeout = absl::Seconds(30);
  // "text" or "json".
  std::string log_format = "text";

  // API security. A token file enables bearer-token authentication; a
  // certificate and key serve the API over TLS, and a client CA requires
  // client certificates (mTLS).
  std::filesystem::path api_token_file;
  bool api_insecure = false;
  std::filesystem::path api_tls_cert;
  std::filesystem::path api_tls_key;
  std::filesystem::path api_tls_client_ca;
  // When not empty, files added by path and torrent save paths must resolve
  // (after symlinks) inside one of these directories.
  std::vector<std::filesystem::path> path_roots;
  // 32 bytes as 64 hex characters: authenticates every cluster-DHT message.
  std::filesystem::path cluster_key_file;
  // A blocklist (eMule ipfilter.dat or PeerGuardian P2P format,
  // base/ip_filter.h): peers in its ranges are neither accepted nor dialed.
  std::filesystem::path ip_filter;
  // Protocol encryption (MSE) of torrents' outgoing connections (incoming
  // ones may always be either; cluster content stays plaintext).
  Encryption encryption = Encryption::kPrefer;
  // Local Service Discovery (BEP 14): announce torrents to the LAN's
  // multicast groups and dial the peers announced there.
  bool lsd = true;
  // Transports of torrents' peer connections: µTP (BEP 29) is dialled first
  // and TCP after it fails, as libtorrent does; both are accepted. Cluster
  // content always runs over TCP.
  bool utp = true;
  bool tcp = true;
  // Seeding limits of every torrent without its own (0: none): a torrent
  // that has uploaded this many times its size (or what it downloaded, if
  // more), or has seeded this many seconds, stops (is paused).
  double share_ratio_limit = 0;
  uint64_t seed_time_limit = 0;
  // Torrents that download, and that seed, at once (0: no limit); the others
  // wait, queued, in the order they were added.
  int active_downloads = 3;
  int active_seeds = 5;
  // Seconds before a peer in a swarm's peer list is dialed again after its
  // connection went, and times its failures after a failed dial
  // (node/peer_list.h; libtorrent's min_reconnect_time).
  int peer_retry_seconds = 60;
  // Prometheus metrics and health endpoints; off unless set.
  std::optional<HostPort> metrics;

  // The HTTP gateway's limits.
  int gateway_threads = 0;  // 0: one per core
  int gateway_max_connections = 20000;
  absl::Duration gateway_header_timeout = absl::Seconds(10);
  absl::Duration gateway_idle_timeout = absl::Seconds(60);
  int gateway_max_header_bytes = 16 * 1024;
  // Fetches on miss under way at once; more get 503.
  int gateway_max_fetches = 64;
  // Verified pieces kept in memory for readers of the same content.
  uint64_t gateway_cache_bytes = 64 << 20;
  // Serve /torrent/<id>/<path>: the files of the node's torrents. Off: a
  // public edge shouldn't serve whatever its operator downloads.
  bool gateway_torrents = false;
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

// ~/.local/share/shoal, or $XDG_DATA_HOME/shoal.
std::filesystem::path DefaultDataDir();

// Parses "1048576", "512MiB", "10G", "1.5TB" (K/M/G/T are powers of 1024,
// KB/MB/... of 1000).
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// Parses a comma-separated HOST:PORT list; the empty string gives an empty
// list.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text);

// Applies the settings of the TOML file at `path` on top of `options`.
// INVALID_ARGUMENT, naming the file, line and key, for a malformed file, an
// unknown key or a bad value; NOT_FOUND if the file does not exist.
absl::Status ApplyConfigFile(const std::filesystem::path& path,
                             NodeOptions& options);

// Checks the options as a whole. INVALID_ARGUMENT with the reason.
absl::Status Validate(const NodeOptions& options);

// The options as a TOML document that ApplyConfigFile accepts and that gives
// back the same options: every key, defaults included (optional addresses
// only when set). Secrets never appear: the options name the files that hold
// them (api_token_file, api_tls_key, cluster_key_file), not their contents.
std::string ConfigToml(const NodeOptions& options);

}  // namespace shoal::node

#endif  // SHOAL_NODE_OPTIONS_H_
