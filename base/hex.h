// Lowercase hexadecimal encoding of byte strings, used for IDs on the wire and
// in the CLI.
#ifndef SHOAL_BASE_HEX_H_
#define SHOAL_BASE_HEX_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace shoal {

// Returns the lowercase hex of `bytes`, two characters per byte.
std::string HexEncode(std::span<const uint8_t> bytes);
std::string HexEncode(std::string_view bytes);

// Decodes `hex` (either case). Returns nullopt if its length is odd or it holds
// a non-hex character.
std::optional<std::vector<uint8_t>> HexDecode(std::string_view hex);

}  // namespace shoal

#endif  // SHOAL_BASE_HEX_H_
