// The one place that includes Boost.Asio for node/.
//
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including
// <utility>, which GCC 12 requires; include it first.
#ifndef SHOAL_NODE_ASIO_H_
#define SHOAL_NODE_ASIO_H_

// clang-format off
#include <utility>
#include <boost/asio.hpp>
// clang-format on

namespace shoal::node {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
}  // namespace shoal::node

#endif  // SHOAL_NODE_ASIO_H_
