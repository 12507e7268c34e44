#include "node/stats.h"

namespace shoal::node {

NodeStats& NodeStats::Get() {
  static NodeStats stats;
  return stats;
}

}  // namespace shoal::node
