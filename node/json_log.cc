#include "node/json_log.h"

#include <chrono>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "spdlog/details/log_msg.h"

namespace shoal::node {
namespace {

void AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
}

void Field(std::string& out, std::string_view key, std::string_view value) {
  out += ",\"";
  out += key;
  out += "\":\"";
  AppendEscaped(out, value);
  out += '"';
}

bool IsHexId(std::string_view w) {
  if (w.size() < 8) return false;
  for (char c : w)
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// "1.2.3.4:5", "[::1]:6881".
bool IsAddress(std::string_view w) {
  const size_t colon = w.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == w.size()) return false;
  for (char c : w.substr(colon + 1))
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  return w[0] == '[' || absl::ascii_isdigit(static_cast<unsigned char>(w[0]));
}

std::string_view Trim(std::string_view w) {
  while (!w.empty() && (w.back() == ':' || w.back() == ',')) w.remove_suffix(1);
  return w;
}

}  // namespace

std::string JsonLogLine(std::string_view time, std::string_view level,
                        std::string_view message) {
  static constexpr std::string_view kComponents[] = {
      "torrent", "swarm",   "dht",   "tracker", "peer", "gateway",
      "api",     "content", "fetch", "store",   "grpc"};
  std::string_view component = "node";
  std::vector<absl::string_view> words =
      absl::StrSplit(absl::string_view(message.data(), message.size()), ' ',
                     absl::SkipEmpty());
  if (!words.empty()) {
    std::string_view first =
        Trim(std::string_view(words[0].data(), words[0].size()));
    for (std::string_view c : kComponents)
      if (first == c) component = c;
    if (component == "node" && first == "API") component = "api";
  }
  std::string out = "{\"time\":\"";
  out += time;
  out += "\",\"level\":\"";
  out += level;
  out += '"';
  Field(out, "component", component);
  Field(out, "message", message);
  bool have_id = false, have_peer = false;
  for (size_t i = 1; i < words.size() && i < 8; ++i) {
    const std::string_view w =
        Trim(std::string_view(words[i].data(), words[i].size()));
    if (!have_id && i == 1 && IsHexId(w)) {
      Field(out, "id", w);
      have_id = true;
    } else if (!have_peer && IsAddress(w)) {
      Field(out, "peer", w);
      have_peer = true;
    }
  }
  out += '}';
  return out;
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg,
                              spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since = msg.time.time_since_epoch();
  const std::time_t secs = duration_cast<seconds>(since).count();
  const int millis =
      static_cast<int>(duration_cast<milliseconds>(since).count() % 1000);
  std::tm tm;
  gmtime_r(&secs, &tm);
  char time[32];
  std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, millis);
  const auto level = spdlog::level::to_string_view(msg.level);
  std::string line =
      JsonLogLine(time, std::string_view(level.data(), level.size()),
                  std::string_view(msg.payload.data(), msg.payload.size()));
  line += '\n';
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace shoal::node
