// shoald: the Shoal node. Runs in the foreground; SIGINT/SIGTERM shut it down
// cleanly.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/gateway.h"
#include "api/metrics.h"
#include "api/server.h"
#include "node/json_log.h"
#include "node/node.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using shoal::node::HostPort;
using shoal::node::NodeOptions;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "shoald: %s\n", message.c_str());
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) Die(std::string(v.status().message()));
  return *std::move(v);
}

}  // namespace

// jemalloc's options, read at its start (MALLOC_CONF in the environment adds
// to them): one arena instead of four per core. With one arena per thread
// group, each gRPC, pool and network thread kept freed piece and memtable
// buffers apart, and a 1 GiB fetch peaked at 86-94 MB RSS; with one, 78-83 MB,
// at the same CPU (docs/ARCHITECTURE.md, "Memory allocator").
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
const char* malloc_conf = "narenas:1";
}

int main(int argc, char** argv) {
  CLI::App app{"shoald: the Shoal content-addressed peer-to-peer CDN node"};
  app.set_version_flag("--version", shoal::node::kVersion);
  // A repeated flag takes its last value, as scripts that append overrides
  // expect.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string config, data_dir, api, listen, dht_routers, capacity,
      download_memory, log_level, gateway, log_format, api_token_file,
      api_tls_cert, api_tls_key, api_tls_client_ca, cluster_key_file, ip_filter,
      metrics;
  std::vector<std::string> bootstrap, path_roots;
  bool api_insecure = false;
  int hash_threads = -1;
  int fetch_timeout = 0;
  app.add_option("--config", config,
                 "TOML config file (flags override its settings)");
  app.add_option("--data-dir", data_dir,
                 "Data directory (default ~/.local/share/shoal)");
  app.add_option("--api", api,
                 "gRPC API address HOST:PORT (default 127.0.0.1:7080)");
  app.add_option("--listen", listen,
                 "Peer addresses HOST:PORT[,HOST:PORT], TCP and UDP: one IPv4, "
                 "one IPv6 or both (default 0.0.0.0:6881,[::]:6881; port 0 = "
                 "any)");
  app.add_option("--gateway", gateway,
                 "HTTP gateway address HOST:PORT (default: off)");
  app.add_option("--bootstrap", bootstrap,
                 "Cluster DHT bootstrap node HOST:PORT (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--dht-routers", dht_routers,
                 "Public DHT routers HOST:PORT,... ('' for none)")
      ->envname("SHOAL_DHT_ROUTERS");
  app.add_option("--capacity", capacity,
                 "Chunk store capacity, e.g. 50GiB (0 = unlimited)");
  app.add_option("--download-memory", download_memory,
                 "Downloaded bytes held in memory, all downloads together, "
                 "e.g. 32MiB (0 = no bound)");
  app.add_option("--hash-threads", hash_threads,
                 "Hashing/disk threads (0 = one per core)");
  app.add_option(
         "--fetch-timeout", fetch_timeout,
         "Seconds a fetch waits for metadata, then for each piece (default 30)")
      ->check(CLI::Range(1, 3600));
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error, critical, off");
  app.add_option("--log-format", log_format,
                 "text (default) or json (one JSON object per line)");
  app.add_option("--api-token-file", api_token_file,
                 "API tokens, one a line, each optionally followed by a role "
                 "(admin, read); every API call must then carry one");
  app.add_flag("--api-insecure", api_insecure,
               "Allow a non-loopback API address without a token file");
  app.add_option("--api-tls-cert", api_tls_cert,
                 "Serve the API over TLS with this certificate chain (PEM)");
  app.add_option("--api-tls-key", api_tls_key,
                 "The private key of --api-tls-cert (PEM)");
  app.add_option("--api-tls-client-ca", api_tls_client_ca,
                 "Require API clients to present a certificate signed by "
                 "this CA (mTLS)");
  app.add_option("--path-root", path_roots,
                 "Confine add-by-path and torrent save paths to this "
                 "directory (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string encryption;
  app.add_option("--encryption", encryption,
                 "Torrents' outgoing connections: prefer (encrypted "
                 "handshake, plaintext if it fails), require or off")
      ->check(CLI::IsMember({"prefer", "require", "off"}));
  double share_ratio_limit = 0;
  app.add_option("--share-ratio-limit", share_ratio_limit,
                 "A seeding torrent stops once it has uploaded this many times "
                 "its size (0: never; a torrent's own limit wins)")
      ->check(CLI::Range(0.0, shoal::node::kMaxShareRatioLimit));
  uint64_t seed_time_limit = 0;
  app.add_option("--seed-time-limit", seed_time_limit,
                 "A seeding torrent stops after seeding this many seconds "
                 "(0: never; a torrent's own limit wins)")
      ->check(CLI::Range(uint64_t{0}, shoal::node::kMaxSeedTimeLimit));
  int active_downloads = 3, active_seeds = 5;
  app.add_option("--active-downloads", active_downloads,
                 "Torrents downloading at once; the others wait queued "
                 "(0: no limit)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--active-seeds", active_seeds,
                 "Torrents seeding at once; the others wait queued (0: no "
                 "limit)")
      ->check(CLI::Range(0, 100000));
  int peer_retry_seconds = 60;
  app.add_option("--peer-retry-seconds", peer_retry_seconds,
                 "Seconds before a peer is dialed again after its connection "
                 "went, and times its failures after a failed dial (the "
                 "third forgets it)")
      ->check(CLI::Range(1, shoal::node::kMaxPeerRetrySeconds));
  std::string utp, tcp_peers;
  app.add_option("--utp", utp,
                 "Torrents' peers over µTP (BEP 29, LEDBAT): dialled first, "
                 "as libtorrent does, and accepted: on (default) or off")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--tcp", tcp_peers,
                 "Torrents' peers over TCP (cluster content always uses "
                 "TCP): on (default) or off")
      ->check(CLI::IsMember({"on", "off"}));
  std::string lsd;
  app.add_option("--lsd", lsd,
                 "Local Service Discovery of torrents' peers on the LAN "
                 "(BEP 14 multicast): on (default) or off")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--ip-filter", ip_filter,
                 "Blocklist of peer addresses (eMule ipfilter.dat or "
                 "PeerGuardian format): never accepted or dialed");
  app.add_option("--cluster-key-file", cluster_key_file,
                 "Cluster key (64 hex characters, from `shoal keygen`): "
                 "authenticates every cluster-DHT message");
  app.add_option("--metrics", metrics,
                 "Prometheus /metrics, /healthz and /readyz on HOST:PORT "
                 "(default: off)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "shoald: %s (see shoald --help)\n", e.what());
    return 2;
  }

  NodeOptions options;
  options.data_dir = shoal::node::DefaultDataDir();
  if (!config.empty()) {
    absl::Status s = shoal::node::ApplyConfigFile(config, options);
    if (!s.ok()) Die(std::string(s.message()));
  }
  if (app.count("--data-dir")) options.data_dir = data_dir;
  if (app.count("--api")) options.api = OrDie(HostPort::Parse(api));
  if (app.count("--listen"))
    options.listen = OrDie(shoal::node::ParseHostPortList(listen));
  if (app.count("--gateway")) options.gateway = OrDie(HostPort::Parse(gateway));
  if (app.count("--bootstrap")) {
    options.bootstrap.clear();
    for (const auto& b : bootstrap)
      options.bootstrap.push_back(OrDie(HostPort::Parse(b)));
  }
  if (app.count("--dht-routers") ||
      std::getenv("SHOAL_DHT_ROUTERS") != nullptr) {
    options.dht_routers = OrDie(shoal::node::ParseHostPortList(dht_routers));
  }
  if (app.count("--capacity"))
    options.capacity_bytes = OrDie(shoal::node::ParseByteSize(capacity));
  if (app.count("--download-memory")) {
    options.download_memory_bytes =
        OrDie(shoal::node::ParseByteSize(download_memory));
  }
  if (app.count("--hash-threads")) options.hash_threads = hash_threads;
  if (app.count("--log-level")) options.log_level = log_level;
  if (app.count("--log-format")) options.log_format = log_format;
  if (app.count("--api-token-file")) options.api_token_file = api_token_file;
  if (app.count("--api-insecure")) options.api_insecure = api_insecure;
  if (app.count("--api-tls-cert")) options.api_tls_cert = api_tls_cert;
  if (app.count("--api-tls-key")) options.api_tls_key = api_tls_key;
  if (app.count("--api-tls-client-ca"))
    options.api_tls_client_ca = api_tls_client_ca;
  if (app.count("--path-root"))
    options.path_roots.assign(path_roots.begin(), path_roots.end());
  if (app.count("--cluster-key-file"))
    options.cluster_key_file = cluster_key_file;
  if (app.count("--ip-filter")) options.ip_filter = ip_filter;
  if (app.count("--encryption"))
    options.encryption = OrDie(shoal::node::ParseEncryption(encryption));
  if (app.count("--lsd")) options.lsd = lsd == "on";
  if (app.count("--utp")) options.utp = utp == "on";
  if (app.count("--tcp")) options.tcp = tcp_peers == "on";
  if (app.count("--active-downloads"))
    options.active_downloads = active_downloads;
  if (app.count("--active-seeds")) options.active_seeds = active_seeds;
  if (app.count("--peer-retry-seconds"))
    options.peer_retry_seconds = peer_retry_seconds;
  if (app.count("--share-ratio-limit"))
    options.share_ratio_limit = share_ratio_limit;
  if (app.count("--seed-time-limit")) options.seed_time_limit = seed_time_limit;
  if (app.count("--metrics")) options.metrics = OrDie(HostPort::Parse(metrics));
  if (app.count("--fetch-timeout")) {
    options.fetch_timeout = absl::Seconds(fetch_timeout);
  }
  if (absl::Status s = shoal::node::Validate(options); !s.ok())
    Die(std::string(s.message()));

  auto logger = spdlog::stderr_color_mt("shoald");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(options.log_level));
  if (options.log_format == "json") {
    spdlog::set_formatter(std::make_unique<shoal::node::JsonLogFormatter>());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  // Every peer and gateway connection is a descriptor: take what the hard
  // limit allows.
  if (struct rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      spdlog::warn("cannot raise the open-file limit: {}",
                   std::strerror(errno));
  }
  shoal::api::RouteGrpcLogsToSpdlog();

  // Signals are taken synchronously by this thread; every thread started later
  // inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The allocator is jemalloc (linked in; see "Memory allocator" in
  // docs/ARCHITECTURE.md): piece buffers of a few MiB are reused from its
  // extents rather than each being an mmap of its own, and the gateway's
  // coroutine frames (1-8 KiB, one per request and call) come from its
  // per-thread caches.

  auto node = OrDie(shoal::node::Node::Start(options));
  auto server = OrDie(shoal::api::ApiServer::Start(*node));
  std::unique_ptr<shoal::api::Gateway> gateway_server;
  if (options.gateway) {
    gateway_server = OrDie(shoal::api::Gateway::Start(*node, *options.gateway));
    server->set_gateway_address(gateway_server->address());
    spdlog::info("HTTP gateway on {}", gateway_server->address());
  }
  std::unique_ptr<shoal::api::MetricsServer> metrics_server;
  if (options.metrics) {
    metrics_server =
        OrDie(shoal::api::MetricsServer::Start(*node, *options.metrics));
    spdlog::info("metrics on http://{}/metrics", metrics_server->address());
  }
  spdlog::info("shoald {} node {} data dir {}", shoal::node::kVersion,
               node->node_id(), options.data_dir.string());
  std::vector<std::string> peer_addresses;
  for (const shoal::node::HostPort& a : node->listen_addresses())
    peer_addresses.push_back(a.ToString());
  spdlog::info("API on {}{}{}, peers on {}", server->address(),
               options.api_tls_cert.empty() ? "" : " (TLS)",
               options.api_token_file.empty() ? "" : " (tokens required)",
               absl::StrJoin(peer_addresses, " and "));
  if (options.cluster_key_file.empty()) {
    spdlog::info(
        "no cluster key: the cluster DHT is open to anyone who reaches the "
        "peer port (use --cluster-key-file on an untrusted network)");
  }
  std::string ready =
      absl::StrCat("shoald ready api=", server->address(),
                   " listen=", node->listen_address().ToString());
  // Dual-stack: the IPv6 address too, whichever address is first.
  if (node->listen_addresses().size() > 1) {
    for (const shoal::node::HostPort& a : node->listen_addresses())
      if (a.host.find(':') != std::string::npos)
        absl::StrAppend(&ready, " listen6=", a.ToString());
  }
  absl::StrAppend(&ready, " node_id=", node->node_id());
  if (gateway_server)
    absl::StrAppend(&ready, " gateway=", gateway_server->address());
  if (metrics_server)
    absl::StrAppend(&ready, " metrics=", metrics_server->address());
  std::printf("%s\n", ready.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{} received, shutting down",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
  metrics_server.reset();
  gateway_server.reset();
  server.reset();
  node.reset();
  spdlog::info("stopped");
  return 0;
}
