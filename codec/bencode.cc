#include "codec/bencode.h"

#include "absl/strings/str_cat.h"

namespace shoal::codec::bencode {

void EncodeTo(const Value& value, std::string& out) {
  if (value.is_int()) {
    absl::StrAppend(&out, "i", value.as_int(), "e");
  } else if (value.is_string()) {
    const std::string& s = value.as_string();
    absl::StrAppend(&out, s.size(), ":");
    out.append(s);
  } else if (value.is_list()) {
    out.push_back('l');
    for (const Value& v : value.as_list()) EncodeTo(v, out);
    out.push_back('e');
  } else {
    out.push_back('d');
    for (const auto& [k, v] : value.as_dict()) {
      absl::StrAppend(&out, k.size(), ":");
      out.append(k);
      EncodeTo(v, out);
    }
    out.push_back('e');
  }
}

std::string Encode(const Value& value) {
  std::string out;
  EncodeTo(value, out);
  return out;
}

}  // namespace shoal::codec::bencode
