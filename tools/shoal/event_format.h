// How `shoal watch` (and `shoal top`) show the node's events: one JSON object
// per event, with its kind and that kind's fields, or one line of text.
#ifndef SHOAL_TOOLS_SHOAL_EVENT_FORMAT_H_
#define SHOAL_TOOLS_SHOAL_EVENT_FORMAT_H_

#include <string>

#include "nlohmann/json.hpp"
#include "shoal/v1/shoal.pb.h"

namespace shoal::cli {

// {"seq", "time", "kind", "missed", ...}: torrent kinds add id, name, state,
// progress, rates, num_peers, message and eta_seconds (null while unknown);
// the others add their payload's fields (FetchProgress's bytes, rate, ETA...).
nlohmann::json EventJson(const v1::Event& e);

// "TIME KIND ID ..." without a newline.
std::string EventText(const v1::Event& e);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_EVENT_FORMAT_H_
