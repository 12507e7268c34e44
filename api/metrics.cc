#include "api/metrics.h"

#include <grpcpp/support/server_interceptor.h>

#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "node/asio.h"  // first Boost include: see the note there
// clang-format off
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include "absl/strings/str_cat.h"
#include "node/listen.h"
#include "node/stats.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"

namespace shoal::api {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using node::NodeStats;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Families built at scrape time from the node's state and counters.
class Families {
 public:
  MetricFamily& Add(std::string name, std::string help, MetricType type) {
    out_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
    return out_.back();
  }
  void Gauge(std::string name, std::string help, double v) {
    Add(std::move(name), std::move(help), MetricType::Gauge)
        .metric.push_back(GaugeMetric(v, {}));
  }
  void Counter(std::string name, std::string help, double v) {
    Add(std::move(name), std::move(help), MetricType::Counter)
        .metric.push_back(CounterMetric(v, {}));
  }
  static ClientMetric GaugeMetric(double v,
                                  std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    return m;
  }
  static ClientMetric CounterMetric(double v,
                                    std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = v;
    return m;
  }
  std::vector<MetricFamily>& families() { return out_; }

 private:
  std::vector<MetricFamily> out_;
};

double Load(const std::atomic<uint64_t>& a) {
  return static_cast<double>(a.load(std::memory_order_relaxed));
}

void NodeFamilies(node::Node& node, Families& f) {
  {
    auto& info = f.Add("shoal_build_info", "Shoal's version (always 1)",
                       MetricType::Gauge);
    info.metric.push_back(
        Families::GaugeMetric(1, {{"version", node::kVersion}}));
  }
  f.Gauge("shoal_uptime_seconds", "Seconds since the node started",
          absl::ToDoubleSeconds(node.uptime()));
  const store::StoreStats s = node.store().Stats();
  f.Gauge("shoal_store_used_bytes", "Bytes of distinct chunks stored",
          static_cast<double>(s.used_bytes));
  f.Gauge("shoal_store_capacity_bytes", "Chunk store capacity (0: unlimited)",
          static_cast<double>(s.capacity_bytes));
  f.Gauge("shoal_store_reserved_bytes", "Capacity held for adds in progress",
          static_cast<double>(s.reserved_bytes));
  f.Gauge("shoal_contents", "Contents in the chunk store",
          static_cast<double>(s.num_contents));
  f.Gauge("shoal_chunks", "Distinct chunks in the chunk store",
          static_cast<double>(s.num_chunks));
  f.Counter("shoal_evictions_total", "Contents evicted to make room",
            static_cast<double>(s.evictions));
  f.Counter("shoal_data_loss_total", "Chunks found corrupt or missing",
            static_cast<double>(s.data_loss_events));

  NodeStats& st = NodeStats::Get();
  struct PerKindFamily {
    const char* name;
    const char* help;
    std::atomic<uint64_t> NodeStats::PerKind::*field;
  };
  static constexpr PerKindFamily kPerKind[] = {
      {"shoal_peer_bytes_sent_total", "Piece bytes sent to peers",
       &NodeStats::PerKind::bytes_sent},
      {"shoal_peer_bytes_received_total", "Piece bytes received from peers",
       &NodeStats::PerKind::bytes_received},
      {"shoal_pieces_verified_total",
       "Pieces received from peers that passed their hash check",
       &NodeStats::PerKind::pieces_verified},
      {"shoal_hash_failures_total",
       "Pieces received from peers that failed their hash check",
       &NodeStats::PerKind::hash_failures},
      {"shoal_peers_banned_total", "Peers banned for sending corrupt data",
       &NodeStats::PerKind::peers_banned},
  };
  for (const PerKindFamily& pk : kPerKind) {
    auto& fam = f.Add(pk.name, pk.help, MetricType::Counter);
    for (size_t k = 0; k < st.by_kind.size(); ++k) {
      fam.metric.push_back(Families::CounterMetric(
          Load(st.by_kind[k].*pk.field),
          {{"kind", std::string(node::kTrafficKindNames[k])}}));
    }
  }
  node::Session& session = node.session();
  f.Gauge("shoal_peer_connections", "Open peer connections",
          static_cast<double>(session.NumPeers()));
  {
    std::map<std::string, int> by_state;
    for (const char* name :
         {"metadata", "checking", "downloading", "seeding", "paused", "error"})
      by_state[name] = 0;
    for (const auto& t : session.ListTorrents())
      ++by_state[node::TorrentStateName(t.state)];
    auto& fam = f.Add("shoal_torrents", "Torrents by state", MetricType::Gauge);
    for (const auto& [state, n] : by_state)
      fam.metric.push_back(Families::GaugeMetric(n, {{"state", state}}));
  }
  {
    const auto [pub, cluster] = session.DhtNodes();
    auto& fam = f.Add("shoal_dht_nodes", "Nodes in the DHT routing table",
                      MetricType::Gauge);
    fam.metric.push_back(Families::GaugeMetric(static_cast<double>(pub),
                                               {{"instance", "public"}}));
    fam.metric.push_back(Families::GaugeMetric(static_cast<double>(cluster),
                                               {{"instance", "cluster"}}));
    auto& lookups =
        f.Add("shoal_dht_lookups_total", "Provider/peer lookups by result",
              MetricType::Counter);
    const char* instances[] = {"public", "cluster"};
    const char* results[] = {"found", "empty"};
    for (size_t i = 0; i < 2; ++i)
      for (size_t r = 0; r < 2; ++r)
        lookups.metric.push_back(Families::CounterMetric(
            Load(st.dht_lookups[i][r]),
            {{"instance", instances[i]}, {"result", results[r]}}));
    f.Counter("shoal_dht_unauthenticated_total",
              "Cluster-DHT messages dropped: no, bad or stale cluster MAC",
              static_cast<double>(session.DhtUnauthenticated()));
  }
  {
    auto& fam = f.Add("shoal_fetches_total", "Fetches of CDN content by result",
                      MetricType::Counter);
    for (size_t r = 0; r < st.fetches.size(); ++r)
      fam.metric.push_back(Families::CounterMetric(
          Load(st.fetches[r]),
          {{"result", std::string(node::kFetchResultNames[r])}}));
    auto& hist = f.Add("shoal_fetch_duration_seconds",
                       "Time of successful fetches", MetricType::Histogram);
    ClientMetric m;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= node::Histogram::kBounds.size(); ++i) {
      cumulative += st.fetch_seconds.count(i);
      m.histogram.bucket.push_back(
          {cumulative, i < node::Histogram::kBounds.size()
                           ? node::Histogram::kBounds[i]
                           : std::numeric_limits<double>::infinity()});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = st.fetch_seconds.sum_seconds();
    hist.metric.push_back(std::move(m));
  }
}

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(ApiMetrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.ApiCall(method_, m->GetSendStatus().error_code());
    }
    m->Proceed();
  }

 private:
  ApiMetrics& metrics_;
  const std::string method_;
};

class CountingFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingFactory(ApiMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/shoal.v1.ContentService/Add" -> "ContentService/Add".
    std::string_view method = info->method();
    if (size_t dot = method.rfind('.', method.find('/', 1));
        dot != std::string_view::npos) {
      method.remove_prefix(dot + 1);
    } else if (!method.empty() && method[0] == '/') {
      method.remove_prefix(1);
    }
    return new CountingInterceptor(metrics_, std::string(method));
  }

 private:
  ApiMetrics& metrics_;
};

}  // namespace

struct ApiMetrics::Impl {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& api_calls =
      prometheus::BuildCounter()
          .Name("shoal_api_calls_total")
          .Help("gRPC API calls by method and status code")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& gateway_requests =
      prometheus::BuildCounter()
          .Name("shoal_gateway_requests_total")
          .Help("HTTP gateway responses by status code")
          .Register(registry);
  prometheus::Family<prometheus::Histogram>& gateway_latency =
      prometheus::BuildHistogram()
          .Name("shoal_gateway_request_duration_seconds")
          .Help("Time from a gateway request's header to its response's end")
          .Register(registry);
  prometheus::Histogram& gateway_latency_all = gateway_latency.Add(
      {},
      prometheus::Histogram::BucketBoundaries{
          0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  prometheus::Counter& gateway_bytes =
      prometheus::BuildCounter()
          .Name("shoal_gateway_bytes_sent_total")
          .Help("Body bytes the HTTP gateway sent")
          .Register(registry)
          .Add({});
  // Label lookups take the family's lock; the counters themselves are atomic.
  std::mutex mu;
  std::map<std::pair<std::string, int>, prometheus::Counter*> api_by_key;
  std::map<int, prometheus::Counter*> gateway_by_code;
};

ApiMetrics::ApiMetrics() : impl_(std::make_unique<Impl>()) {}
ApiMetrics::~ApiMetrics() = default;

ApiMetrics& ApiMetrics::Get() {
  static ApiMetrics* metrics = new ApiMetrics();  // never destroyed
  return *metrics;
}

void ApiMetrics::ApiCall(std::string_view method, int code) {
  static constexpr const char* kCodes[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  prometheus::Counter* c;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto key = std::make_pair(std::string(method), code);
    auto it = impl_->api_by_key.find(key);
    if (it == impl_->api_by_key.end()) {
      const std::string code_name =
          code >= 0 && code <= 16 ? kCodes[code] : std::to_string(code);
      c = &impl_->api_calls.Add({{"method", key.first}, {"code", code_name}});
      impl_->api_by_key.emplace(std::move(key), c);
    } else {
      c = it->second;
    }
  }
  c->Increment();
}

void ApiMetrics::GatewayRequest(int status, double seconds,
                                uint64_t body_bytes) {
  prometheus::Counter* c;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->gateway_by_code.find(status);
    if (it == impl_->gateway_by_code.end()) {
      c = &impl_->gateway_requests.Add({{"code", std::to_string(status)}});
      impl_->gateway_by_code.emplace(status, c);
    } else {
      c = it->second;
    }
  }
  c->Increment();
  impl_->gateway_latency_all.Observe(seconds);
  impl_->gateway_bytes.Increment(static_cast<double>(body_bytes));
}

std::string ApiMetrics::Render(node::Node& node) {
  Families f;
  NodeFamilies(node, f);
  std::vector<MetricFamily> all = std::move(f.families());
  for (MetricFamily& fam : impl_->registry.Collect())
    all.push_back(std::move(fam));
  return prometheus::TextSerializer().Serialize(all);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ApiMetrics::MakeInterceptorFactory() {
  return std::make_unique<CountingFactory>(*this);
}

// --- The HTTP server
// ---------------------------------------------------------------------------

struct MetricsServer::Impl {
  Impl(node::Node& n) : node(n), acceptor(io) {}
  node::Node& node;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::string address;
  std::thread thread;

  http::response<http::string_body> Answer(
      const http::request<http::string_body>& req) {
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "shoald");
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.body() = "use GET\n";
    } else if (path == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type,
              "text/plain; version=0.0.4; charset=utf-8");
      res.body() = ApiMetrics::Get().Render(node);
    } else if (path == "/healthz") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    } else if (path == "/readyz") {
      const bool bootstrapped = node.options().bootstrap.empty() ||
                                node.session().DhtNodes().second > 0;
      res.result(bootstrapped ? http::status::ok
                              : http::status::service_unavailable);
      res.set(http::field::content_type, "text/plain");
      res.body() = bootstrapped ? "ready\n"
                                : "not ready: the cluster DHT knows no node "
                                  "yet\n";
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: try /metrics, /healthz or /readyz\n";
    }
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    return res;
  }

  asio::awaitable<void> Serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(std::chrono::seconds(30));
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(16 * 1024);
      boost::system::error_code ec;
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      const auto req = parser.release();
      auto res = Answer(req);
      if (req.method() == http::verb::head) {
        http::response_serializer<http::string_body> sr(res);
        sr.split(true);
        co_await http::async_write_header(
            stream, sr, asio::redirect_error(asio::use_awaitable, ec));
      } else {
        co_await http::async_write(
            stream, res, asio::redirect_error(asio::use_awaitable, ec));
      }
      if (ec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        continue;
      }
      asio::co_spawn(io, Serve(std::move(socket)), asio::detached);
    }
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    node::Node& node, const node::HostPort& address) {
  auto impl = std::make_unique<Impl>(node);
  auto port = node::BindAndListen(impl->acceptor, address, "metrics address");
  if (!port.ok()) return port.status();
  node::HostPort bound = address;
  bound.port = *port;
  impl->address = bound.ToString();
  asio::co_spawn(impl->io, impl->Accept(), asio::detached);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const std::string& MetricsServer::address() const { return impl_->address; }

}  // namespace shoal::api
