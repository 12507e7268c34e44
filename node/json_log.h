// `--log-format json`: one JSON object per line for log shippers:
//   {"time":"2026-12-06T10:00:00.123Z","level":"info","component":"torrent",
//    "message":"torrent 3f2a..: checking 2048 pieces","id":"3f2a.."}
// Our messages start with what they concern ("torrent <id>: ...",
// "swarm <id>: ...", "dht cluster: ...", "peer <address> ..."); the formatter
// lifts that into "component" and, where present, "id" (a content or torrent
// ID, or its prefix) and "peer" (an address).
#ifndef SHOAL_NODE_JSON_LOG_H_
#define SHOAL_NODE_JSON_LOG_H_

#include <memory>
#include <string>
#include <string_view>

#include "spdlog/formatter.h"

namespace shoal::node {

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// One log line's JSON (without the newline), for tests.
std::string JsonLogLine(std::string_view time, std::string_view level,
                        std::string_view message);

}  // namespace shoal::node

#endif  // SHOAL_NODE_JSON_LOG_H_
