// The one way tracker/ includes Boost.Asio and Beast. Boost 1.74's
// asio/awaitable.hpp uses std::exchange without including <utility>, which
// GCC 12 does not pull in by itself, so <utility> must come first.
#ifndef SHOAL_TRACKER_INTERNAL_ASIO_H_
#define SHOAL_TRACKER_INTERNAL_ASIO_H_

// clang-format off
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#endif  // SHOAL_TRACKER_INTERNAL_ASIO_H_
