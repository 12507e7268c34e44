// A fixed set of worker threads that run posted tasks in FIFO order.
//
// Shoal's hashing/disk pool: piece hashing and storage I/O run here, off the
// network thread.
//
//   ThreadPool pool(ThreadPool::DefaultSize());
//   pool.Post([] { HashSomething(); });
#ifndef SHOAL_BASE_THREAD_POOL_H_
#define SHOAL_BASE_THREAD_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shoal {

// Thread-safe: Post may be called from any thread, including from inside a
// task.
class ThreadPool {
 public:
  // Starts `num_threads` workers (at least one).
  explicit ThreadPool(int num_threads);
  // Runs every task already posted, then joins the workers.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task` to run on a worker.
  void Post(std::function<void()> task);

  int size() const { return static_cast<int>(workers_.size()); }

  // One thread per core.
  static int DefaultSize();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace shoal

#endif  // SHOAL_BASE_THREAD_POOL_H_
