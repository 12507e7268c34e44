// IpFilter: address ranges the node refuses to talk to (the `ip_filter`
// option), in the two formats blocklists come in:
//
//   eMule ipfilter.dat   001.009.096.105 - 001.009.096.110 , 000 , Some name
//                        (an access level above 127 allows the range: it is
//                        left out)
//   PeerGuardian (P2P)   Some name:1.9.96.105-1.9.96.110
//                        (the name may contain ':'; the last one splits)
//
// Both take IPv4 and IPv6 ranges (a range's ends in one family), a single
// address as "A - A", blank lines, and comments starting with '#' or "//".
// A line that is neither is counted as malformed and skipped: a blocklist of
// a million lines is not refused for one bad line, and Parse says how many
// were skipped and what the first was.
//
// Lookups are a binary search over sorted, merged ranges. A value type.
#ifndef SHOAL_BASE_IP_FILTER_H_
#define SHOAL_BASE_IP_FILTER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "base/peer_endpoint.h"

namespace shoal {

class IpFilter {
 public:
  struct ParseReport {
    size_t ranges = 0;            // blocked ranges read (before merging)
    size_t malformed = 0;         // lines skipped
    std::string first_malformed;  // "line N: why", if any
  };

  // Reads the rules in `text`.
  static IpFilter Parse(std::string_view text, ParseReport* report = nullptr);
  // Reads a file. NOT_FOUND or PERMISSION_DENIED, naming it, if it cannot be
  // read; INVALID_ARGUMENT if it holds no rule at all but malformed lines.
  static absl::StatusOr<IpFilter> Load(const std::filesystem::path& path,
                                       ParseReport* report = nullptr);

  // Whether `address` (its port aside) lies in a blocked range.
  bool Blocked(const PeerEndpoint& address) const;
  bool empty() const { return v4_.empty() && v6_.empty(); }
  // Merged ranges, both families.
  size_t size() const { return v4_.size() + v6_.size(); }

 private:
  using V6 = std::array<uint8_t, 16>;
  void Merge();

  std::vector<std::pair<uint32_t, uint32_t>> v4_;  // [first, last], sorted
  std::vector<std::pair<V6, V6>> v6_;
};

}  // namespace shoal

#endif  // SHOAL_BASE_IP_FILTER_H_
