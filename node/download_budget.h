// DownloadBudget: the node-wide bound on downloaded bytes held in memory.
//
// Every swarm of the node (fetches by ID and torrents) charges it with what a
// download holds or has coming: blocks requested and not yet arrived, pieces
// being assembled, pieces waiting to be verified and written. A swarm asks for
// no more blocks while the budget is spent (beyond one piece when it holds
// nothing, so that each makes progress), and is woken when another gives
// bytes back. So the leecher's memory is bounded by configuration however many
// downloads run at once (`download_memory`, docs/ARCHITECTURE.md, "Memory").
//
// Lives on the network thread, like the swarms.
#ifndef SHOAL_NODE_DOWNLOAD_BUDGET_H_
#define SHOAL_NODE_DOWNLOAD_BUDGET_H_

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

namespace shoal::node {

class DownloadBudget {
 public:
  explicit DownloadBudget(size_t limit) : limit_(limit) {}
  DownloadBudget(const DownloadBudget&) = delete;
  DownloadBudget& operator=(const DownloadBudget&) = delete;

  size_t limit() const { return limit_; }
  size_t used() const { return used_; }
  size_t available() const { return used_ < limit_ ? limit_ - used_ : 0; }

  // Replaces a holder's charge (`charge`, which the holder keeps and the
  // budget updates) with `bytes`. A release that leaves room wakes the
  // waiters.
  void Charge(size_t& charge, size_t bytes) {
    used_ = used_ - charge + bytes;
    const bool released = bytes < charge;
    charge = bytes;
    if (released && used_ < limit_ && !waiters_.empty()) {
      std::vector<std::function<void()>> wake;
      wake.swap(waiters_);
      for (auto& w : wake) w();
    }
  }

  // `wake` runs once, at the next release that leaves room.
  void WaitForRoom(std::function<void()> wake) {
    waiters_.push_back(std::move(wake));
  }

 private:
  const size_t limit_;
  size_t used_ = 0;
  std::vector<std::function<void()>> waiters_;
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_DOWNLOAD_BUDGET_H_
