// Which pieces of a content being fetched have arrived, for readers on other
// threads.
//
// The swarm (network thread) marks pieces as they are verified and stored; a
// gRPC or gateway reader waits for the piece it needs next. Thread-safe.
#ifndef SHOAL_NODE_PIECE_EVENTS_H_
#define SHOAL_NODE_PIECE_EVENTS_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace shoal::node {

class PieceEvents {
 public:
  PieceEvents() = default;

  // The number of pieces, once the content's metadata is known.
  void SetNumPieces(uint32_t n) {
    {
      absl::MutexLock lock(&mu_);
      if (have_.empty()) have_.assign(n, false);
      known_ = true;
    }
    Wake();
  }
  void MarkHave(uint32_t piece) {
    {
      absl::MutexLock lock(&mu_);
      if (piece < have_.size()) have_[piece] = true;
    }
    Wake();
  }
  // Whether the metadata is known (does not wait).
  bool known() {
    absl::MutexLock lock(&mu_);
    return known_;
  }
  // A provider lookup found someone to ask (so a fetch that times out was
  // let down by its providers, rather than finding none).
  // A provider lookup ended, having found someone or not.
  void NoteLookup(bool found) {
    {
      absl::MutexLock lock(&mu_);
      ++lookups_;
      providers_found_ |= found;
    }
    Wake();
  }
  // Provider lookups ended so far.
  int lookups() {
    absl::MutexLock lock(&mu_);
    return lookups_;
  }
  bool providers_found() {
    absl::MutexLock lock(&mu_);
    return providers_found_;
  }
  // For asynchronous readers: `wake` runs once, on the thread that reports
  // the next change (metadata, a piece, failure), or at once if the fetch has
  // failed already. It must not block.
  void AddWaiter(std::function<void()> wake) {
    {
      absl::MutexLock lock(&mu_);
      if (failed_.ok()) {
        waiters_.push_back(std::move(wake));
        return;
      }
    }
    wake();
  }
  // Whether `piece` has arrived (does not wait).
  bool Has(uint32_t piece) {
    absl::MutexLock lock(&mu_);
    return piece < have_.size() && have_[piece];
  }
  bool failed() {
    absl::MutexLock lock(&mu_);
    return !failed_.ok();
  }

  // The fetch gave up (no peers, bad data, removed): waiters get `status`.
  void Fail(absl::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (failed_.ok()) failed_ = std::move(status);
    }
    Wake();
  }
  // The failure, or OK.
  absl::Status failure() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

  // Waits until the metadata is known. DEADLINE_EXCEEDED, or the failure.
  absl::Status WaitForMetadata(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return known_ || !failed_.ok();
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
      return absl::DeadlineExceededError(
          "timed out waiting for the content's metadata");
    }
    return known_ ? absl::OkStatus() : failed_;
  }

  // Waits until `piece` has arrived, failing if nothing arrives for `idle` in a
  // row.
  absl::Status WaitForPiece(uint32_t piece, absl::Duration idle) {
    absl::MutexLock lock(&mu_);
    for (;;) {
      if (piece < have_.size() && have_[piece]) return absl::OkStatus();
      if (!failed_.ok()) return failed_;
      size_t before = Count();
      auto changed = [this, before, piece]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                           return Count() != before || !failed_.ok() ||
                                  (piece < have_.size() && have_[piece]);
                         };
      if (!mu_.AwaitWithTimeout(absl::Condition(&changed), idle)) {
        return absl::UnavailableError(
            absl::StrCat("no piece arrived for ", absl::FormatDuration(idle),
                         " (peers gone or too slow)"));
      }
    }
  }

 private:
  void Wake() {
    std::vector<std::function<void()>> waiters;
    {
      absl::MutexLock lock(&mu_);
      waiters.swap(waiters_);
    }
    for (auto& w : waiters) w();
  }
  size_t Count() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t n = 0;
    for (bool b : have_) n += b;
    return n;
  }

  absl::Mutex mu_;
  std::vector<bool> have_ ABSL_GUARDED_BY(mu_);
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool providers_found_ ABSL_GUARDED_BY(mu_) = false;
  int lookups_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shoal::node

#endif  // SHOAL_NODE_PIECE_EVENTS_H_
