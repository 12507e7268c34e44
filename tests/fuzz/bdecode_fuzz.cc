// libFuzzer target: the bencode decoder on arbitrary bytes. Besides "never
// crash", it checks invariants: a decoded document's root spans exactly the
// consumed bytes, and walking every node stays inside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "codec/bdecode.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  shoal::codec::BdecodeOptions options;
  options.max_depth = 50;
  options.max_tokens = 100000;
  options.allow_trailing_bytes = size > 0 && (data[0] & 1);
  auto doc = shoal::codec::Bdecode(in, options);
  if (!doc.ok()) return 0;
  using shoal::codec::BNode;
  BNode root = doc->root();
  Check(root.raw().size() == doc->consumed());
  Check(root.raw().data() == in.data());
  // Walk the whole tree with an explicit stack.
  std::vector<BNode> stack{root};
  size_t visited = 0;
  while (!stack.empty()) {
    BNode n = stack.back();
    stack.pop_back();
    ++visited;
    Check(n.raw().data() >= in.data() &&
          n.raw().data() + n.raw().size() <= in.data() + in.size());
    if (n.is_string()) {
      Check(n.string_value().size() <= n.raw().size());
    } else if (n.is_dict()) {
      for (const auto& e : n.dict_items()) {
        (void)n.Find(e.key);
        stack.push_back(e.value);
      }
    } else if (n.is_list()) {
      for (BNode c : n.children()) stack.push_back(c);
    }
    (void)doc->FirstNonCanonicalIn(n);
  }
  Check(visited <= doc->num_tokens());
  return 0;
}
