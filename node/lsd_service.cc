#include "node/lsd_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "tracker/lsd.h"

namespace shoal::node {

using udp = asio::ip::udp;
using boost::system::error_code;

struct LsdService::Group {
  explicit Group(asio::io_context& io) : socket(io) {}
  udp::socket socket;
  udp::endpoint group;
  bool v6 = false;
  udp::endpoint from;
  std::array<char, 1500> buffer{};
};

LsdService::LsdService(asio::io_context& io, uint16_t port, std::string cookie,
                       OnPeer on_peer)
    : io_(io),
      port_(port),
      cookie_(std::move(cookie)),
      on_peer_(std::move(on_peer)) {}

LsdService::~LsdService() { Stop(); }

absl::Status LsdService::Start() {
  std::string errors;
  for (const bool v6 : {false, true}) {
    auto g = std::make_unique<Group>(io_);
    g->v6 = v6;
    const asio::ip::address group = asio::ip::make_address(
        v6 ? tracker::kLsdGroupV6 : tracker::kLsdGroupV4);
    g->group = udp::endpoint(group, tracker::kLsdPort);
    error_code ec;
    const udp protocol = v6 ? udp::v6() : udp::v4();
    g->socket.open(protocol, ec);
    if (!ec) g->socket.set_option(udp::socket::reuse_address(true), ec);
    if (!ec && v6) g->socket.set_option(asio::ip::v6_only(true), ec);
    if (!ec) g->socket.bind(udp::endpoint(protocol, tracker::kLsdPort), ec);
    if (!ec) g->socket.set_option(asio::ip::multicast::join_group(group), ec);
    if (!ec) g->socket.set_option(asio::ip::multicast::hops(4), ec);
    if (ec) {
      absl::StrAppend(&errors, errors.empty() ? "" : "; ", v6 ? "IPv6" : "IPv4",
                      ": ", ec.message());
      spdlog::info("lsd: no {} local service discovery: {}",
                   v6 ? "IPv6" : "IPv4", ec.message());
      continue;
    }
    Receive(*g);
    groups_.push_back(std::move(g));
  }
  if (groups_.empty())
    return absl::UnavailableError(absl::StrCat("lsd: ", errors));
  return absl::OkStatus();
}

void LsdService::Stop() {
  for (auto& g : groups_) {
    error_code ec;
    g->socket.close(ec);
  }
  groups_.clear();
}

void LsdService::Announce(const std::vector<InfoHash>& info_hashes) {
  if (info_hashes.empty()) return;
  tracker::LsdAnnounce a;
  a.port = port_;
  a.cookie = cookie_;
  // Several hashes to a message, as BEP 14 allows; a datagram stays small.
  for (size_t i = 0; i < info_hashes.size(); i += 16) {
    a.info_hashes.assign(
        info_hashes.begin() + static_cast<ptrdiff_t>(i),
        info_hashes.begin() +
            static_cast<ptrdiff_t>(std::min(info_hashes.size(), i + 16)));
    for (auto& g : groups_) {
      auto bytes =
          std::make_shared<std::string>(tracker::EncodeLsdAnnounce(a, g->v6));
      g->socket.async_send_to(
          asio::buffer(*bytes), g->group,
          [bytes, v6 = g->v6](const error_code& ec, size_t) {
            if (ec && ec != asio::error::operation_aborted)
              spdlog::debug("lsd: {} announce: {}", v6 ? "IPv6" : "IPv4",
                            ec.message());
          });
    }
  }
}

void LsdService::Receive(Group& g) {
  g.socket.async_receive_from(
      asio::buffer(g.buffer), g.from,
      [this, &g](const error_code& ec, size_t n) {
        if (ec == asio::error::operation_aborted || !g.socket.is_open()) return;
        if (!ec) {
          auto a =
              tracker::ParseLsdAnnounce(std::string_view(g.buffer.data(), n));
          if (!a.ok()) {
            ++malformed_;
          } else if (a->cookie != cookie_) {
            ++received_;
            asio::ip::address from = g.from.address();
            if (from.is_v6() && from.to_v6().is_v4_mapped())
              from =
                  asio::ip::make_address_v4(asio::ip::v4_mapped, from.to_v6());
            const std::string ip = from.to_string();
            if (auto peer = PeerEndpoint::FromIpString(ip, a->port)) {
              for (const InfoHash& h : a->info_hashes) on_peer_(h, *peer);
            }
          }
        }
        Receive(g);
      });
}

}  // namespace shoal::node
