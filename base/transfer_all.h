#ifndef SHOAL_BASE_TRANSFER_ALL_H_
#define SHOAL_BASE_TRANSFER_ALL_H_

#include <cstddef>
#include <limits>

namespace shoal {

// A completion condition for asio::async_write that, like asio::transfer_all,
// writes until everything is sent or an error occurs, but without Asio's cap of
// 64 KiB per write_some. With the cap, a 64 KiB body behind an HTTP header, or
// a batch of queued peer messages, goes out as one full sendmsg plus a second
// one for the few bytes left over: an extra syscall and an extra small TCP
// segment per response. Uncapped, the kernel takes as much as the socket buffer
// allows in one call.
struct TransferAll {
  template <typename ErrorCode>
  std::size_t operator()(const ErrorCode& ec, std::size_t) const {
    return ec ? 0 : std::numeric_limits<std::size_t>::max() / 2;
  }
};

}  // namespace shoal

#endif  // SHOAL_BASE_TRANSFER_ALL_H_
