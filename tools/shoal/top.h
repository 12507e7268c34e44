// `shoal top`: a terminal dashboard of one node, over the status RPCs (polled
// once a second) and the events stream (shown as it arrives).
//
// Plain ANSI sequences, no curses: the alternate screen, a hidden cursor and
// a terminal in non-canonical mode, all restored on exit, on `q` and on
// Ctrl-C. A frame is drawn only when it differs from the last one, at most 30
// a second, line by line from the top left (no clearing: no flicker).
#ifndef SHOAL_TOOLS_SHOAL_TOP_H_
#define SHOAL_TOOLS_SHOAL_TOP_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "shoal/v1/shoal.pb.h"

namespace shoal::cli {

// One line of the table: a torrent, or a content being fetched by ID.
struct TopRow {
  std::string id;
  std::string name;
  bool torrent = false;
  std::string state;  // a torrent's state; "fetching" for a content
  double progress = 0;
  double download_rate = 0;
  double upload_rate = 0;
  uint32_t peers = 0;
  std::optional<int64_t> eta_seconds;
};

// What one frame shows.
struct TopModel {
  v1::NodeInfo node;
  std::vector<TopRow> rows;
  // Node-wide payload rates (bytes/s) from NodeInfo's counters, newest last.
  std::deque<double> down_history;
  std::deque<double> up_history;
  std::deque<std::string> events;  // the latest, newest last
  std::string error;   // the last failed poll's or action's, or empty
  std::string prompt;  // a question on the last line ("remove ...? y/n")
};

enum class TopSort { kName, kProgress, kDownRate, kEta };
const char* TopSortName(TopSort s);

// Lines of the frame for a `width` x `height` terminal (height 0: as many as
// needed, for --once). Each line is at most `width` columns wide; the row at
// `selected` (an index into the sorted rows) is marked with '>'.
std::vector<std::string> RenderTop(const TopModel& model, int width, int height,
                                   TopSort sort, size_t selected);

// Sorts rows as `sort` says (name ascending, the others largest first; no ETA
// last).
void SortRows(std::vector<TopRow>& rows, TopSort sort);

}  // namespace shoal::cli

#endif  // SHOAL_TOOLS_SHOAL_TOP_H_
