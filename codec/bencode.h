// Bencode values and the encoder (BEP 3).
//
// A Value is an integer, a byte string, a list or a dictionary. Dictionaries
// keep their keys sorted as raw byte strings, which is the order BEP 3
// requires, so Encode() of the same Value always gives the same bytes:
//
//   bencode::Dict info;
//   info["name"] = "abc";
//   info["piece length"] = int64_t{65536};
//   std::string bytes = bencode::Encode(bencode::Value(std::move(info)));
#ifndef SHOAL_CODEC_BENCODE_H_
#define SHOAL_CODEC_BENCODE_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace shoal::codec::bencode {

class Value;
using List = std::vector<Value>;
// std::less<std::string> compares as unsigned bytes, BEP 3's key order.
using Dict = std::map<std::string, Value, std::less<>>;

// A bencoded value. A value type: copyable and movable.
class Value {
 public:
  Value() : v_(int64_t{0}) {}
  Value(int64_t i) : v_(i) {}                 // NOLINT: implicit by design
  Value(std::string s) : v_(std::move(s)) {}  // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  Value(const char* s) : v_(std::string(s)) {}       // NOLINT
  Value(List l) : v_(std::move(l)) {}                // NOLINT
  Value(Dict d) : v_(std::move(d)) {}                // NOLINT

  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<List>(v_); }
  bool is_dict() const { return std::holds_alternative<Dict>(v_); }

  // REQUIRES: the value holds the named alternative.
  int64_t as_int() const { return std::get<int64_t>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  List& as_list() { return std::get<List>(v_); }
  const Dict& as_dict() const { return std::get<Dict>(v_); }
  Dict& as_dict() { return std::get<Dict>(v_); }

  friend bool operator==(const Value&, const Value&) = default;

 private:
  std::variant<int64_t, std::string, List, Dict> v_;
};

// Returns the bencoding of `value`.
std::string Encode(const Value& value);

// Appends the bencoding of `value` to `out`.
void EncodeTo(const Value& value, std::string& out);

}  // namespace shoal::codec::bencode

#endif  // SHOAL_CODEC_BENCODE_H_
