#include "store/internal/fast_crc32c.h"

#include <isa-l/crc.h>

#include <climits>
#include <cstddef>
#include <cstdint>

#include "rocksdb/db.h"

namespace rocksdb::crc32c {

// Overrides librocksdb's definition (see the header). Same contract: extends
// `init_crc` (a finished CRC32C, 0 for none) over data[0, n).
uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  uint32_t crc = ~init_crc;
  const auto* p = reinterpret_cast<const unsigned char*>(data);
  while (n > 0) {
    int chunk = n > INT_MAX ? INT_MAX : static_cast<int>(n);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), chunk, crc);
    p += chunk;
    n -= static_cast<size_t>(chunk);
  }
  return ~crc;
}

}  // namespace rocksdb::crc32c

namespace shoal::store::internal {

bool FastCrc32cActive() {
  // The standard CRC32C check value, computed in two parts to exercise Extend's
  // chaining.
  uint32_t crc = rocksdb::crc32c::Extend(0, "1234", 4);
  crc = rocksdb::crc32c::Extend(crc, "56789", 5);
  return crc == 0xe3069283u;
}

}  // namespace shoal::store::internal
