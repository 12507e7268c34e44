// libFuzzer target: magnet URI parsing. An accepted URI must emit a URI that
// parses back to an equal value (parse -> emit -> parse is the identity).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "chunk/magnet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = shoal::chunk::ParseMagnetUri(in);
  if (!m.ok()) return 0;
  std::string out = shoal::chunk::ToMagnetUri(*m);
  auto again = shoal::chunk::ParseMagnetUri(out);
  if (!again.ok() || !(*again == *m)) std::abort();
  if (shoal::chunk::ToMagnetUri(*again) != out) std::abort();
  return 0;
}
