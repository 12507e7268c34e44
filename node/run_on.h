// Runs a function on an io_context's thread and waits for its result: how
// other threads (gRPC handlers) reach the network thread's state.
#ifndef SHOAL_NODE_RUN_ON_H_
#define SHOAL_NODE_RUN_ON_H_

#include <future>
#include <utility>

#include "node/asio.h"

namespace shoal::node {

// Runs `fn` on the io_context's thread and returns its result. REQUIRES: not
// called on that thread (it would wait for itself).
template <typename Fn>
auto RunOn(asio::io_context& io, Fn fn) -> decltype(fn()) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  asio::post(io, [&task] { task(); });
  return result.get();
}

}  // namespace shoal::node

#endif  // SHOAL_NODE_RUN_ON_H_
