#include "tools/shoal/event_format.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/shoal/client.h"

namespace shoal::cli {
namespace {

nlohmann::json Eta(bool has, int64_t seconds) {
  return has ? nlohmann::json(seconds) : nlohmann::json(nullptr);
}

std::string RateText(double bytes_per_s) {
  return absl::StrCat(HumanBytes(static_cast<uint64_t>(bytes_per_s)), "/s");
}

std::string Short(const std::string& id) { return id.substr(0, 12); }

}  // namespace

nlohmann::json EventJson(const v1::Event& e) {
  nlohmann::json j = {{"seq", e.seq()},
                      {"time", FormatTimestamp(e.time())},
                      {"kind", e.kind()},
                      {"missed", e.missed()}};
  switch (e.payload_case()) {
    case v1::Event::kContent: {
      const v1::ContentEvent& c = e.content();
      j.update({{"id", c.id()},
                {"name", c.name()},
                {"length", c.length()},
                {"reason", c.reason()}});
      break;
    }
    case v1::Event::kFetchStarted:
      j.update({{"id", e.fetch_started().id()},
                {"providers", e.fetch_started().providers()}});
      break;
    case v1::Event::kFetchProgress: {
      const v1::FetchProgress& f = e.fetch_progress();
      j.update({{"id", f.id()},
                {"bytes", f.bytes()},
                {"total_bytes", f.total_bytes()},
                {"download_rate", f.download_rate()},
                {"num_peers", f.num_peers()},
                {"eta_seconds", Eta(f.has_eta_seconds(), f.eta_seconds())}});
      break;
    }
    case v1::Event::kFetchCompleted: {
      const v1::FetchCompleted& f = e.fetch_completed();
      nlohmann::json providers = nlohmann::json::object();
      for (const auto& [address, bytes] : f.bytes_per_provider())
        providers[address] = bytes;
      j.update({{"id", f.id()},
                {"bytes", f.bytes()},
                {"seconds", f.seconds()},
                {"average_rate", f.average_rate()},
                {"bytes_per_provider", providers}});
      break;
    }
    case v1::Event::kFetchFailed:
      j.update({{"id", e.fetch_failed().id()},
                {"reason", e.fetch_failed().reason()}});
      break;
    case v1::Event::kPeerBanned:
      j.update({{"id", e.peer_banned().id()},
                {"address", e.peer_banned().address()},
                {"reason", e.peer_banned().reason()}});
      break;
    case v1::Event::kDataLoss:
      j.update({{"id", e.data_loss().id()},
                {"piece", e.data_loss().piece()},
                {"detail", e.data_loss().detail()}});
      break;
    case v1::Event::kDhtState:
      j.update({{"network", e.dht_state().network()},
                {"state", e.dht_state().state()},
                {"nodes", e.dht_state().nodes()}});
      break;
    case v1::Event::PAYLOAD_NOT_SET:  // a torrent's
      j.update({{"id", e.id()},
                {"name", e.name()},
                {"state", e.state()},
                {"progress", e.progress()},
                {"download_rate", e.download_rate()},
                {"upload_rate", e.upload_rate()},
                {"num_peers", e.num_peers()},
                {"message", e.message()},
                {"eta_seconds", Eta(e.has_eta_seconds(), e.eta_seconds())}});
      break;
  }
  return j;
}

std::string EventText(const v1::Event& e) {
  std::string out = absl::StrCat(FormatTimestamp(e.time()), " ", e.kind(), " ");
  auto eta = [](bool has, int64_t s) {
    return has ? absl::StrCat(" eta ", HumanDuration(s)) : std::string();
  };
  switch (e.payload_case()) {
    case v1::Event::kContent: {
      const v1::ContentEvent& c = e.content();
      absl::StrAppend(&out, Short(c.id()), " ", HumanBytes(c.length()),
                      c.name().empty() ? "" : " ", c.name(),
                      c.reason().empty() ? "" : ": ", c.reason());
      break;
    }
    case v1::Event::kFetchStarted:
      absl::StrAppend(&out, Short(e.fetch_started().id()), " ",
                      e.fetch_started().providers(), " providers");
      break;
    case v1::Event::kFetchProgress: {
      const v1::FetchProgress& f = e.fetch_progress();
      char pct[16];
      std::snprintf(pct, sizeof pct, "%5.1f%%",
                    f.total_bytes() > 0
                        ? 100.0 * static_cast<double>(f.bytes()) /
                              static_cast<double>(f.total_bytes())
                        : 100.0);
      absl::StrAppend(&out, Short(f.id()), " ", pct, " of ",
                      HumanBytes(f.total_bytes()), " ",
                      RateText(f.download_rate()), " ", f.num_peers(), " peers",
                      eta(f.has_eta_seconds(), f.eta_seconds()));
      break;
    }
    case v1::Event::kFetchCompleted: {
      const v1::FetchCompleted& f = e.fetch_completed();
      std::vector<std::string> from;
      for (const auto& [address, bytes] : f.bytes_per_provider())
        from.push_back(absl::StrCat(address, " ", HumanBytes(bytes)));
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.2f s", f.seconds());
      absl::StrAppend(&out, Short(f.id()), " ", HumanBytes(f.bytes()), " in ",
                      secs, " (", RateText(f.average_rate()), ")",
                      from.empty() ? "" : " from ", absl::StrJoin(from, ", "));
      break;
    }
    case v1::Event::kFetchFailed:
      absl::StrAppend(&out, Short(e.fetch_failed().id()), ": ",
                      e.fetch_failed().reason());
      break;
    case v1::Event::kPeerBanned:
      absl::StrAppend(&out, Short(e.peer_banned().id()), " ",
                      e.peer_banned().address(), ": ",
                      e.peer_banned().reason());
      break;
    case v1::Event::kDataLoss:
      absl::StrAppend(&out, Short(e.data_loss().id()), " piece ",
                      e.data_loss().piece(), ": ", e.data_loss().detail());
      break;
    case v1::Event::kDhtState:
      absl::StrAppend(&out, e.dht_state().network(), " ", e.dht_state().state(),
                      " (", e.dht_state().nodes(), " nodes)");
      break;
    case v1::Event::PAYLOAD_NOT_SET: {
      char line[128];
      std::snprintf(line, sizeof line, "%.12s %-11s %5.1f%% %10s %3u peers",
                    e.id().c_str(), e.state().c_str(), e.progress() * 100,
                    RateText(e.download_rate()).c_str(), e.num_peers());
      absl::StrAppend(&out, line, eta(e.has_eta_seconds(), e.eta_seconds()),
                      " ", e.name(), e.message().empty() ? "" : ": ",
                      e.message());
      break;
    }
  }
  if (e.missed() > 0) absl::StrAppend(&out, " (", e.missed(), " missed)");
  return out;
}

}  // namespace shoal::cli
