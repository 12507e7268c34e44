#include "codec/bdecode.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"

namespace shoal::codec {
namespace {

absl::Status DecodeError(std::string_view what, size_t offset) {
  return absl::InvalidArgumentError(
      absl::StrCat("bencode: ", std::string(what), " at byte ", offset));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Describes the byte at `pos` for error messages.
std::string DescribeByte(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  static constexpr char kHex[] = "0123456789abcdef";
  return absl::StrCat("byte 0x", std::string(1, kHex[u >> 4]),
                      std::string(1, kHex[u & 15]));
}

}  // namespace

BNode::Type BNode::type() const {
  if (doc_ == nullptr) return Type::kNone;
  return doc_->tokens_[index_].type;
}

int64_t BNode::int_value() const {
  if (!is_int()) return 0;
  return doc_->tokens_[index_].value;
}

std::string_view BNode::string_value() const {
  if (!is_string()) return {};
  const auto& t = doc_->tokens_[index_];
  return doc_->buffer_.substr(t.data, t.end - t.data);
}

std::string_view BNode::raw() const {
  if (doc_ == nullptr) return {};
  const auto& t = doc_->tokens_[index_];
  return doc_->buffer_.substr(t.offset, t.end - t.offset);
}

size_t BNode::offset() const {
  if (doc_ == nullptr) return 0;
  return doc_->tokens_[index_].offset;
}

BNode::ChildIterator& BNode::ChildIterator::operator++() {
  index_ = doc_->tokens_[index_].next;
  return *this;
}

BNode::Children BNode::children() const {
  if (!is_list() && !is_dict()) {
    return {ChildIterator(doc_, 0), ChildIterator(doc_, 0)};
  }
  return {ChildIterator(doc_, index_ + 1),
          ChildIterator(doc_, doc_->tokens_[index_].next)};
}

size_t BNode::size() const {
  size_t n = 0;
  for (BNode c : children()) {
    (void)c;
    ++n;
  }
  return is_dict() ? n / 2 : n;
}

std::vector<BNode> BNode::list_items() const {
  std::vector<BNode> out;
  if (!is_list()) return out;
  for (BNode c : children()) out.push_back(c);
  return out;
}

std::vector<BEntry> BNode::dict_items() const {
  std::vector<BEntry> out;
  if (!is_dict()) return out;
  auto kids = children();
  for (auto it = kids.begin(); it != kids.end();) {
    BNode key = *it;
    ++it;
    BNode value = *it;
    ++it;
    out.push_back({key.string_value(), key.offset(), value});
  }
  return out;
}

BNode BNode::Find(std::string_view key) const {
  if (!is_dict()) return {};
  auto kids = children();
  for (auto it = kids.begin(); it != kids.end();) {
    BNode k = *it;
    ++it;
    if (k.string_value() == key) return *it;
    ++it;
  }
  return {};
}

BNode BNode::FindDict(std::string_view key) const {
  BNode n = Find(key);
  return n.is_dict() ? n : BNode();
}

BNode BNode::FindList(std::string_view key) const {
  BNode n = Find(key);
  return n.is_list() ? n : BNode();
}

std::optional<std::string_view> BNode::FindString(std::string_view key) const {
  BNode n = Find(key);
  if (!n.is_string()) return std::nullopt;
  return n.string_value();
}

std::optional<int64_t> BNode::FindInt(std::string_view key) const {
  BNode n = Find(key);
  if (!n.is_int()) return std::nullopt;
  return n.int_value();
}

std::optional<std::string> BDocument::FirstNonCanonicalIn(
    const BNode& node) const {
  if (!node) return std::nullopt;
  const Token& t = tokens_[node.index_];
  auto it = std::lower_bound(
      non_canonical_.begin(), non_canonical_.end(), t.offset,
      [](const NonCanonical& n, uint32_t off) { return n.offset < off; });
  if (it == non_canonical_.end() || it->offset >= t.end) return std::nullopt;
  return absl::StrCat(it->what, " at byte ", it->offset);
}

absl::StatusOr<BDocument> Bdecode(std::string_view buffer,
                                  const BdecodeOptions& options) {
  using Type = BNode::Type;
  if (buffer.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bencode: input of ", buffer.size(),
                     " bytes is larger than the 4 GiB the decoder accepts"));
  }
  BDocument doc;
  doc.buffer_ = buffer;

  // One frame per open list or dictionary.
  struct Frame {
    uint32_t token;
    bool is_dict;
    bool expect_key;  // dictionaries: the next value is a key
    bool has_prev_key;
    std::string_view prev_key;
  };
  std::vector<Frame> stack;
  const size_t n = buffer.size();
  // A first guess at the token count (real torrents average far more than 32
  // bytes per token), to skip the early regrowths without mapping memory for
  // the worst case (2 bytes per token).
  doc.tokens_.reserve(static_cast<size_t>(std::min<int64_t>(
      options.max_tokens, static_cast<int64_t>(n / 32 + 16))));
  size_t pos = 0;

  // Reads unsigned decimal digits at `pos` into `out`; false on overflow.
  auto read_digits = [&](uint64_t limit, uint64_t& out) {
    out = 0;
    while (pos < n && IsDigit(buffer[pos])) {
      uint64_t d = static_cast<uint64_t>(buffer[pos] - '0');
      if (out > (limit - d) / 10) return false;
      out = out * 10 + d;
      ++pos;
    }
    return true;
  };
  auto note = [&](size_t offset, const char* what) {
    doc.non_canonical_.push_back({static_cast<uint32_t>(offset), what});
  };

  for (;;) {
    if (pos >= n) {
      if (stack.empty()) return DecodeError("empty input", pos);
      const Frame& f = stack.back();
      return DecodeError(
          absl::StrCat("unexpected end of input inside the ",
                       f.is_dict ? "dictionary" : "list", " opened at byte ",
                       doc.tokens_[f.token].offset),
          pos);
    }
    const char c = buffer[pos];

    // End of the innermost list or dictionary.
    if (c == 'e' && !stack.empty()) {
      Frame& f = stack.back();
      if (f.is_dict && !f.expect_key) {
        return DecodeError("dictionary key without a value", pos);
      }
      BDocument::Token& t = doc.tokens_[f.token];
      t.end = static_cast<uint32_t>(pos + 1);
      t.next = static_cast<uint32_t>(doc.tokens_.size());
      ++pos;
      stack.pop_back();
      if (stack.empty()) break;
      continue;
    }

    if (static_cast<int64_t>(doc.tokens_.size()) >= options.max_tokens) {
      return DecodeError(
          absl::StrCat("more than ", options.max_tokens, " tokens (the limit)"),
          pos);
    }

    bool is_key = false;
    if (!stack.empty() && stack.back().is_dict) {
      Frame& f = stack.back();
      is_key = f.expect_key;
      if (is_key && !IsDigit(c)) {
        return DecodeError(
            absl::StrCat("dictionary key must be a string, found ",
                         DescribeByte(c)),
            pos);
      }
      f.expect_key = !f.expect_key;
    }

    const size_t start = pos;
    BDocument::Token tok{};
    tok.offset = static_cast<uint32_t>(start);
    tok.next = static_cast<uint32_t>(doc.tokens_.size() + 1);

    if (c == 'i') {
      ++pos;
      bool negative = false;
      if (pos < n && buffer[pos] == '-') {
        negative = true;
        ++pos;
      }
      const size_t digits_start = pos;
      uint64_t magnitude = 0;
      const uint64_t limit =
          negative ? uint64_t{1} << 63
                   : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      if (!read_digits(limit, magnitude)) {
        return DecodeError("integer does not fit in 64 bits", start);
      }
      if (pos == digits_start) {
        if (pos >= n) return DecodeError("unterminated integer", start);
        return DecodeError(absl::StrCat("expected a digit in integer, found ",
                                        DescribeByte(buffer[pos])),
                           pos);
      }
      if (pos >= n) return DecodeError("unterminated integer", start);
      if (buffer[pos] != 'e') {
        return DecodeError(absl::StrCat("expected 'e' to end integer, found ",
                                        DescribeByte(buffer[pos])),
                           pos);
      }
      ++pos;
      if (buffer[digits_start] == '0' && pos - digits_start > 2) {
        note(start, "integer with a leading zero");
      } else if (negative && magnitude == 0) {
        note(start, "negative zero");
      }
      tok.type = Type::kInt;
      tok.value = negative ? static_cast<int64_t>(0 - magnitude)
                           : static_cast<int64_t>(magnitude);
      tok.end = static_cast<uint32_t>(pos);
    } else if (IsDigit(c)) {
      uint64_t len = 0;
      if (!read_digits(std::numeric_limits<uint32_t>::max(), len)) {
        return DecodeError("string length does not fit in 32 bits", start);
      }
      if (pos >= n) return DecodeError("unterminated string length", start);
      if (buffer[pos] != ':') {
        return DecodeError(
            absl::StrCat("expected ':' after string length, found ",
                         DescribeByte(buffer[pos])),
            pos);
      }
      if (c == '0' && pos - start > 1) {
        note(start, "string length with a leading zero");
      }
      ++pos;
      if (len > options.max_string_length) {
        return DecodeError(absl::StrCat("string of ", len,
                                        " bytes is longer than the limit of ",
                                        options.max_string_length),
                           start);
      }
      if (len > n - pos) {
        return DecodeError(
            absl::StrCat("string of ", len, " bytes runs past ",
                         "the end of input (", n - pos, " bytes left)"),
            start);
      }
      tok.type = Type::kString;
      tok.data = static_cast<uint32_t>(pos);
      pos += len;
      tok.end = static_cast<uint32_t>(pos);
      if (is_key) {
        Frame& f = stack.back();
        std::string_view key = buffer.substr(tok.data, len);
        if (f.has_prev_key) {
          if (key == f.prev_key) {
            note(start, "repeated dictionary key");
          } else if (key < f.prev_key) {
            note(start, "dictionary keys out of order");
          }
        }
        f.prev_key = key;
        f.has_prev_key = true;
      }
    } else if (c == 'l' || c == 'd') {
      if (static_cast<int>(stack.size()) >= options.max_depth) {
        return DecodeError(absl::StrCat("nesting deeper than ",
                                        options.max_depth, " (the limit)"),
                           start);
      }
      tok.type = c == 'l' ? Type::kList : Type::kDict;
      ++pos;
      stack.push_back({static_cast<uint32_t>(doc.tokens_.size()),
                       c == 'd',
                       true,
                       false,
                       {}});
      doc.tokens_.push_back(tok);
      continue;
    } else {
      return DecodeError(
          absl::StrCat("unexpected ", DescribeByte(c), ", expected a value"),
          pos);
    }

    doc.tokens_.push_back(tok);
    if (stack.empty()) break;
  }

  doc.consumed_ = pos;
  if (pos != n && !options.allow_trailing_bytes) {
    return DecodeError(
        absl::StrCat(n - pos, " trailing bytes after the top-level value"),
        pos);
  }
  return doc;
}

}  // namespace shoal::codec
