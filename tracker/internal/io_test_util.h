// Test helpers shared by tracker/*_test.cc that run an io_context.
#ifndef SHOAL_TRACKER_INTERNAL_IO_TEST_UTIL_H_
#define SHOAL_TRACKER_INTERNAL_IO_TEST_UTIL_H_

#include <chrono>
#include <functional>

#include "tracker/internal/asio.h"

namespace shoal::tracker::testing {

// Runs `io` until `done()` holds or `timeout` passes; returns done().
inline bool RunUntil(
    boost::asio::io_context& io, const std::function<bool()>& done,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return done();
}

// Runs `io` for `d` (to let things that should not happen have a chance).
inline void RunFor(boost::asio::io_context& io, std::chrono::milliseconds d) {
  RunUntil(
      io, [] { return false; }, d);
}

}  // namespace shoal::tracker::testing

#endif  // SHOAL_TRACKER_INTERNAL_IO_TEST_UTIL_H_
