// Runs jobs on a ThreadPool and hands their results back in submission order.
//
// The caller keeps at most `window` jobs in flight, which bounds memory: an add
// hashes the next pieces while earlier ones are stored, a read verifies the
// next pieces while the current one is sent.
//
//   OrderedWork<absl::Status> work(pool, /*window=*/4);
//   for (auto& piece : pieces) {
//     if (work.full()) SHOAL_RETURN_IF_ERROR(work.PopOldest());
//     work.Submit([&piece] { return Store(piece); });
//   }
//   while (!work.empty()) SHOAL_RETURN_IF_ERROR(work.PopOldest());
#ifndef SHOAL_BASE_ORDERED_WORK_H_
#define SHOAL_BASE_ORDERED_WORK_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "base/thread_pool.h"

namespace shoal {

// Submit, PopOldest, full and empty are for one thread (the owner); jobs run on
// the pool. The destructor waits for jobs still running.
template <typename T>
class OrderedWork {
 public:
  OrderedWork(ThreadPool& pool, size_t window)
      : pool_(pool), window_(window ? window : 1) {}
  ~OrderedWork() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return running_ == 0; });
  }
  OrderedWork(const OrderedWork&) = delete;
  OrderedWork& operator=(const OrderedWork&) = delete;

  bool full() const { return slots_.size() >= window_; }
  bool empty() const { return slots_.empty(); }
  size_t size() const { return slots_.size(); }

  // Starts `job` on the pool. REQUIRES: !full().
  void Submit(std::function<T()> job) {
    auto slot = std::make_shared<std::optional<T>>();
    slots_.push_back(slot);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++running_;
    }
    pool_.Post([this, slot, job = std::move(job)]() mutable {
      T result = job();
      std::lock_guard<std::mutex> lock(mu_);
      *slot = std::move(result);
      --running_;
      cv_.notify_all();
    });
  }

  // Waits for the oldest job and returns its result. REQUIRES: !empty().
  T PopOldest() {
    std::shared_ptr<std::optional<T>> slot = slots_.front();
    slots_.pop_front();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return slot->has_value(); });
    return std::move(**slot);
  }

 private:
  ThreadPool& pool_;
  const size_t window_;
  // Owner thread only. shared_ptr: a slot is shared by the owner and the job
  // that fills it.
  std::deque<std::shared_ptr<std::optional<T>>> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ = 0;  // guarded by mu_
};

}  // namespace shoal

#endif  // SHOAL_BASE_ORDERED_WORK_H_
