#include "tracker/announce.h"

#include <cstring>

namespace shoal::tracker {

PeerId PeerId::FromBytes(std::string_view raw) {
  PeerId id;
  std::memcpy(id.bytes.data(), raw.data(), id.bytes.size());
  return id;
}

std::string_view EventName(TrackerEvent event) {
  switch (event) {
    case TrackerEvent::kNone:
      return "";
    case TrackerEvent::kCompleted:
      return "completed";
    case TrackerEvent::kStarted:
      return "started";
    case TrackerEvent::kStopped:
      return "stopped";
  }
  return "";
}

}  // namespace shoal::tracker
