#include "node/options.h"

#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "spdlog/spdlog.h"
#include "toml++/toml.h"

namespace shoal::node {

absl::StatusOr<Encryption> ParseEncryption(std::string_view name) {
  if (name == "prefer") return Encryption::kPrefer;
  if (name == "require") return Encryption::kRequire;
  if (name == "off") return Encryption::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("encryption must be prefer, require or off, not '",
                   std::string(name), "'"));
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos)
    return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> HostPort::Parse(std::string_view text) {
  std::string t(text);
  HostPort hp;
  std::string port;
  if (!t.empty() && t[0] == '[') {
    size_t close = t.find(']');
    if (close == std::string::npos || close + 1 >= t.size() ||
        t[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", t, "': expected [IPv6]:PORT"));
    }
    hp.host = t.substr(1, close - 1);
    port = t.substr(close + 2);
  } else {
    size_t colon = t.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad address '", t, "': expected HOST:PORT"));
    }
    hp.host = t.substr(0, colon);
    port = t.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad address '", t, "': write IPv6 addresses as [ADDR]:PORT"));
    }
  }
  if (hp.host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad address '", t, "': empty host"));
  }
  unsigned value = 0;
  auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", t, "'"));
  }
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

absl::StatusOr<HostPort> HostPort::ParsePeer(std::string_view text) {
  SHOAL_ASSIGN_OR_RETURN(HostPort hp, Parse(text));
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(hp.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer address must be an IP address, got '", hp.host, "'"));
  }
  return hp;
}

std::vector<HostPort> DefaultDhtRouters() {
  return {{"router.bittorrent.com", 6881},
          {"dht.transmissionbt.com", 6881},
          {"router.utorrent.com", 6881},
          {"dht.libtorrent.org", 25401}};
}

std::filesystem::path DefaultDataDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME");
      xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "shoal";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr && *home != '\0' ? home : ".") /
         ".local" / "share" / "shoal";
}

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string t(text);
  size_t i = 0;
  while (i < t.size() &&
         (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.'))
    ++i;
  std::string number = t.substr(0, i);
  std::string unit = t.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (auto& c : unit)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double value = 0;
  auto [end, ec] =
      std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() ||
      end != number.data() + number.size()) {
    return absl::InvalidArgumentError(absl::StrCat("bad size '", t, "'"));
  }
  double mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else {
    static constexpr std::string_view kUnits = "KMGTP";
    size_t p = kUnits.find(unit[0]);
    std::string rest = unit.substr(1);
    if (p == std::string_view::npos ||
        !(rest.empty() || rest == "IB" || rest == "B")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad size unit in '", t, "' (use K, M, G, T, KiB, MB, ...)"));
    }
    mult = std::pow(rest == "B" ? 1000.0 : 1024.0, static_cast<double>(p + 1));
  }
  double bytes = value * mult;
  if (bytes > 1.8e19)
    return absl::InvalidArgumentError(absl::StrCat("size '", t, "' too large"));
  return static_cast<uint64_t>(std::llround(bytes));
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(std::string_view text) {
  std::vector<HostPort> out;
  for (absl::string_view part :
       absl::StrSplit(std::string(text), ',', absl::SkipWhitespace())) {
    std::string p(part);
    p.erase(0, p.find_first_not_of(' '));
    p.erase(p.find_last_not_of(' ') + 1);
    SHOAL_ASSIGN_OR_RETURN(HostPort hp, HostPort::Parse(p));
    out.push_back(std::move(hp));
  }
  return out;
}

namespace {

std::string Where(const std::filesystem::path& path, const toml::node& node) {
  return absl::StrCat(path.string(), ":", node.source().begin.line);
}

absl::StatusOr<std::vector<HostPort>> AddressList(
    const std::filesystem::path& path, std::string_view key,
    const toml::node& node) {
  if (const auto* s = node.as_string()) return ParseHostPortList(s->get());
  const auto* arr = node.as_array();
  if (arr == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(path, node), ": ", std::string(key),
                     " must be a list of \"host:port\" strings"));
  }
  std::vector<HostPort> out;
  for (const auto& el : *arr) {
    const auto* s = el.as_string();
    if (s == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, el), ": ", std::string(key), " entries must be strings"));
    }
    auto hp = HostPort::Parse(s->get());
    if (!hp.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, el), ": ", std::string(hp.status().message())));
    }
    out.push_back(*std::move(hp));
  }
  return out;
}

}  // namespace

absl::Status ApplyConfigFile(const std::filesystem::path& path,
                             NodeOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat("config file ", path.string(), " does not exist"));
  }
  toml::table table;
  try {
    table = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ":", e.source().begin.line, ": ",
                     std::string(e.description())));
  }
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    auto bad = [&](std::string_view want) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(path, node), ": ", k, " must be ", std::string(want)));
    };
    auto address = [&](HostPort& out) -> absl::Status {
      const auto* s = node.as_string();
      if (s == nullptr) return bad("a \"host:port\" string");
      auto hp = HostPort::Parse(s->get());
      if (!hp.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(path, node), ": ", std::string(hp.status().message())));
      }
      out = *std::move(hp);
      return absl::OkStatus();
    };
    // An integer number of bytes or a string such as "64MiB".
    auto size = [&](uint64_t& out, std::string_view example) -> absl::Status {
      const std::string want = absl::StrCat("a size such as 1073741824 or \"",
                                            std::string(example), "\"");
      if (const auto* i = node.as_integer()) {
        if (i->get() < 0) return bad(want);
        out = static_cast<uint64_t>(i->get());
      } else if (const auto* s = node.as_string()) {
        auto bytes = ParseByteSize(s->get());
        if (!bytes.ok()) return bad(want);
        out = *bytes;
      } else {
        return bad(want);
      }
      return absl::OkStatus();
    };
    if (k == "data_dir") {
      const auto* s = node.as_string();
      if (s == nullptr) return bad("a string");
      options.data_dir = s->get();
    } else if (k == "api") {
      SHOAL_RETURN_IF_ERROR(address(options.api));
    } else if (k == "listen") {
      SHOAL_ASSIGN_OR_RETURN(options.listen, AddressList(path, k, node));
    } else if (k == "gateway") {
      HostPort hp;
      SHOAL_RETURN_IF_ERROR(address(hp));
      options.gateway = hp;
    } else if (k == "bootstrap") {
      SHOAL_ASSIGN_OR_RETURN(options.bootstrap, AddressList(path, k, node));
    } else if (k == "dht_routers") {
      SHOAL_ASSIGN_OR_RETURN(options.dht_routers, AddressList(path, k, node));
    } else if (k == "capacity") {
      SHOAL_RETURN_IF_ERROR(size(options.capacity_bytes, "100GiB"));
    } else if (k == "download_memory") {
      SHOAL_RETURN_IF_ERROR(size(options.download_memory_bytes, "32MiB"));
    } else if (k == "hash_threads") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 0 || i->get() > 256)
        return bad("an integer in 0..256");
      options.hash_threads = static_cast<int>(i->get());
    } else if (k == "fetch_timeout") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > 3600) {
        return bad("a number of seconds in 1..3600");
      }
      options.fetch_timeout = absl::Seconds(i->get());
    } else if (k == "log_level") {
      const auto* s = node.as_string();
      if (s == nullptr) return bad("a string");
      options.log_level = s->get();
    } else if (k == "log_format") {
      const auto* s = node.as_string();
      if (s == nullptr) return bad("\"text\" or \"json\"");
      options.log_format = s->get();
    } else if (k == "api_token_file" || k == "api_tls_cert" ||
               k == "api_tls_key" || k == "api_tls_client_ca" ||
               k == "cluster_key_file" || k == "ip_filter") {
      const auto* s = node.as_string();
      if (s == nullptr || s->get().empty()) return bad("a file path");
      std::filesystem::path& target =
          k == "api_token_file"      ? options.api_token_file
          : k == "api_tls_cert"      ? options.api_tls_cert
          : k == "api_tls_key"       ? options.api_tls_key
          : k == "api_tls_client_ca" ? options.api_tls_client_ca
          : k == "ip_filter"         ? options.ip_filter
                                     : options.cluster_key_file;
      target = s->get();
    } else if (k == "encryption") {
      const auto* str = node.as_string();
      if (str == nullptr) return bad("\"prefer\", \"require\" or \"off\"");
      auto e = ParseEncryption(str->get());
      if (!e.ok()) return bad("\"prefer\", \"require\" or \"off\"");
      options.encryption = *e;
    } else if (k == "share_ratio_limit") {
      const auto* f = node.as_floating_point();
      const auto* i = node.as_integer();
      const double v = f ? f->get() : i ? static_cast<double>(i->get()) : -1;
      if (!(v >= 0 && v <= kMaxShareRatioLimit))
        return bad("a ratio in 0..1000000 (0: no limit)");
      options.share_ratio_limit = v;
    } else if (k == "seed_time_limit") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 0 ||
          static_cast<uint64_t>(i->get()) > kMaxSeedTimeLimit)
        return bad("a number of seconds in 0..315360000 (0: no limit)");
      options.seed_time_limit = static_cast<uint64_t>(i->get());
    } else if (k == "active_downloads" || k == "active_seeds") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 0 || i->get() > 100000)
        return bad("an integer in 0..100000 (0: no limit)");
      (k == "active_downloads" ? options.active_downloads
                               : options.active_seeds) =
          static_cast<int>(i->get());
    } else if (k == "peer_retry_seconds") {
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < 1 || i->get() > kMaxPeerRetrySeconds)
        return bad("a number of seconds in 1..86400");
      options.peer_retry_seconds = static_cast<int>(i->get());
    } else if (k == "lsd" || k == "utp" || k == "tcp") {
      const auto* b = node.as_boolean();
      if (b == nullptr) return bad("true or false");
      (k == "lsd"   ? options.lsd
       : k == "utp" ? options.utp
                    : options.tcp) = b->get();
    } else if (k == "gateway_torrents") {
      const auto* b = node.as_boolean();
      if (b == nullptr) return bad("true or false");
      options.gateway_torrents = b->get();
    } else if (k == "api_insecure") {
      const auto* b = node.as_boolean();
      if (b == nullptr) return bad("true or false");
      options.api_insecure = b->get();
    } else if (k == "path_roots") {
      const auto* arr = node.as_array();
      if (arr == nullptr) return bad("a list of directories");
      options.path_roots.clear();
      for (const auto& el : *arr) {
        const auto* s = el.as_string();
        if (s == nullptr || s->get().empty())
          return bad("a list of directories");
        options.path_roots.emplace_back(s->get());
      }
    } else if (k == "gateway_threads" || k == "gateway_max_connections" ||
               k == "gateway_header_timeout" || k == "gateway_idle_timeout" ||
               k == "gateway_max_header_bytes" || k == "gateway_max_fetches") {
      struct Limit {
        const char* key;
        int64_t min, max;
      };
      static constexpr Limit kLimits[] = {
          {"gateway_threads", 0, 256},
          {"gateway_max_connections", 1, 1'000'000},
          {"gateway_header_timeout", 1, 3600},
          {"gateway_idle_timeout", 1, 86400},
          {"gateway_max_header_bytes", 1024, 1 << 20},
          {"gateway_max_fetches", 1, 100'000},
      };
      const Limit* limit = nullptr;
      for (const Limit& l : kLimits)
        if (k == l.key) limit = &l;
      const auto* i = node.as_integer();
      if (i == nullptr || i->get() < limit->min || i->get() > limit->max) {
        return bad(
            absl::StrCat("an integer in ", limit->min, "..", limit->max));
      }
      const int v = static_cast<int>(i->get());
      if (k == "gateway_threads") options.gateway_threads = v;
      if (k == "gateway_max_connections") options.gateway_max_connections = v;
      if (k == "gateway_header_timeout")
        options.gateway_header_timeout = absl::Seconds(v);
      if (k == "gateway_idle_timeout")
        options.gateway_idle_timeout = absl::Seconds(v);
      if (k == "gateway_max_header_bytes") options.gateway_max_header_bytes = v;
      if (k == "gateway_max_fetches") options.gateway_max_fetches = v;
    } else if (k == "gateway_cache") {
      SHOAL_RETURN_IF_ERROR(size(options.gateway_cache_bytes, "64MiB"));
    } else if (k == "metrics") {
      HostPort hp;
      SHOAL_RETURN_IF_ERROR(address(hp));
      options.metrics = hp;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(path, node), ": unknown setting '", k, "'"));
    }
  }
  return absl::OkStatus();
}

std::string ConfigToml(const NodeOptions& o) {
  toml::table t;
  auto list = [](const auto& items, auto to_string) {
    toml::array a;
    for (const auto& i : items) a.push_back(to_string(i));
    return a;
  };
  auto host_port = [](const HostPort& hp) { return hp.ToString(); };
  auto path = [](const std::filesystem::path& p) { return p.string(); };
  t.insert("data_dir", o.data_dir.string());
  t.insert("api", o.api.ToString());
  t.insert("listen", list(o.listen, host_port));
  t.insert("bootstrap", list(o.bootstrap, host_port));
  t.insert("dht_routers", list(o.dht_routers, host_port));
  if (o.gateway) t.insert("gateway", o.gateway->ToString());
  if (o.metrics) t.insert("metrics", o.metrics->ToString());
  t.insert("capacity", static_cast<int64_t>(o.capacity_bytes));
  t.insert("download_memory", static_cast<int64_t>(o.download_memory_bytes));
  t.insert("hash_threads", o.hash_threads);
  t.insert("log_level", o.log_level);
  t.insert("log_format", o.log_format);
  t.insert("fetch_timeout", absl::ToInt64Seconds(o.fetch_timeout));
  for (const auto& [key, value] :
       {std::pair{"api_token_file", &o.api_token_file},
        {"api_tls_cert", &o.api_tls_cert},
        {"api_tls_key", &o.api_tls_key},
        {"api_tls_client_ca", &o.api_tls_client_ca},
        {"cluster_key_file", &o.cluster_key_file},
        {"ip_filter", &o.ip_filter}}) {
    if (!value->empty()) t.insert(key, value->string());
  }
  t.insert("api_insecure", o.api_insecure);
  t.insert("path_roots", list(o.path_roots, path));
  t.insert("encryption", o.encryption == Encryption::kPrefer    ? "prefer"
                         : o.encryption == Encryption::kRequire ? "require"
                                                                : "off");
  t.insert("lsd", o.lsd);
  t.insert("utp", o.utp);
  t.insert("tcp", o.tcp);
  t.insert("share_ratio_limit", o.share_ratio_limit);
  t.insert("seed_time_limit", static_cast<int64_t>(o.seed_time_limit));
  t.insert("active_downloads", o.active_downloads);
  t.insert("active_seeds", o.active_seeds);
  t.insert("peer_retry_seconds", o.peer_retry_seconds);
  t.insert("gateway_threads", o.gateway_threads);
  t.insert("gateway_max_connections", o.gateway_max_connections);
  t.insert("gateway_header_timeout",
           absl::ToInt64Seconds(o.gateway_header_timeout));
  t.insert("gateway_idle_timeout",
           absl::ToInt64Seconds(o.gateway_idle_timeout));
  t.insert("gateway_max_header_bytes", o.gateway_max_header_bytes);
  t.insert("gateway_max_fetches", o.gateway_max_fetches);
  t.insert("gateway_cache", static_cast<int64_t>(o.gateway_cache_bytes));
  t.insert("gateway_torrents", o.gateway_torrents);
  std::ostringstream out;
  out << toml::toml_formatter(t) << "\n";
  return out.str();
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && a.is_loopback();
}

absl::Status ValidateListen(const std::vector<HostPort>& listen) {
  if (listen.empty()) {
    return absl::InvalidArgumentError(
        "listen names no address (give HOST:PORT, or an IPv4 and an IPv6 "
        "address separated by a comma)");
  }
  if (listen.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen takes at most two addresses (one IPv4, one IPv6), got ",
        listen.size()));
  }
  if (listen.size() == 2) {
    // An IPv6 literal is the only host form with a colon.
    auto v6 = [](const HostPort& hp) {
      return hp.host.find(':') != std::string::npos;
    };
    if (v6(listen[0]) == v6(listen[1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen addresses ", listen[0].ToString(), " and ",
          listen[1].ToString(),
          " are of one address family: give one IPv4 and one IPv6 address"));
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const NodeOptions& options) {
  if (options.data_dir.empty())
    return absl::InvalidArgumentError("data dir is empty");
  if (options.log_format != "text" && options.log_format != "json") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown log format '", options.log_format, "' (use text or json)"));
  }
  SHOAL_RETURN_IF_ERROR(ValidateListen(options.listen));
  if (!options.utp && !options.tcp) {
    return absl::InvalidArgumentError(
        "utp and tcp are both off: torrents could reach no peer");
  }
  if (options.api_tls_cert.empty() != options.api_tls_key.empty()) {
    return absl::InvalidArgumentError(
        "api_tls_cert and api_tls_key go together: give both or neither");
  }
  if (!options.api_tls_client_ca.empty() && options.api_tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "api_tls_client_ca needs api_tls_cert and api_tls_key (client "
        "certificates are checked over TLS)");
  }
  if (!IsLoopbackHost(options.api.host) && options.api_token_file.empty() &&
      !options.api_insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the API address ", options.api.ToString(),
        " is not loopback: set api_token_file (--api-token-file) so that "
        "callers must authenticate, or --api-insecure on a trusted network"));
  }
  if (options.metrics) {
    if (options.gateway && options.metrics->port != 0 &&
        *options.metrics == *options.gateway) {
      return absl::InvalidArgumentError(
          "metrics and gateway must be different addresses");
    }
    if (options.metrics->port != 0 && *options.metrics == options.api) {
      return absl::InvalidArgumentError(
          "metrics and api must be different addresses");
    }
  }
  for (const auto& root : options.path_roots) {
    if (!root.is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "path_roots entries must be absolute, got '", root.string(), "'"));
    }
  }
  if (options.hash_threads < 0 || options.hash_threads > 256) {
    return absl::InvalidArgumentError("hash_threads must be in 0..256");
  }
  if (spdlog::level::from_str(options.log_level) == spdlog::level::off &&
      options.log_level != "off") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown log level '", options.log_level,
        "' (use trace, debug, info, warn, error, critical or off)"));
  }
  return absl::OkStatus();
}

}  // namespace shoal::node
