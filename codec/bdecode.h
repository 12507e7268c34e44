// A zero-copy bencode decoder for untrusted input (BEP 3).
//
// Bdecode() tokenizes a buffer in one pass, without recursion (an explicit
// stack holds the open lists and dictionaries), under limits on nesting depth,
// token count and string length. The result is a BDocument: a flat array of
// tokens that point into the caller's buffer, and BNode views over it. Nothing
// is copied, so the buffer must outlive the document and every node.
//
//   absl::StatusOr<BDocument> doc = Bdecode(bytes);
//   if (!doc.ok()) return doc.status();  // "bencode: ... at byte 17"
//   BNode info = doc->root().FindDict("info");
//   std::string_view raw_info = info.raw();  // exact bytes: hash these
//
// The decoder accepts non-canonical encodings that real .torrent files contain
// (integers and string lengths with leading zeros, "-0", dictionary keys out of
// order or repeated) but records where they are, so callers that need
// canonical bytes (BitTorrent v2 info dicts) can refuse them with
// BDocument::FirstNonCanonicalIn(). With repeated keys, Find() returns the
// first.
#ifndef SHOAL_CODEC_BDECODE_H_
#define SHOAL_CODEC_BDECODE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace shoal::codec {

// Limits for Bdecode(). A value type; the defaults suit .torrent files.
struct BdecodeOptions {
  // Lists and dictionaries nested deeper than this are an error. The top-level
  // value is depth 1.
  int max_depth = 100;
  // Every integer, string, list and dictionary is one token.
  int64_t max_tokens = 3'000'000;
  // The longest byte string accepted.
  uint64_t max_string_length = uint64_t{1} << 31;
  // If false, bytes after the first complete value are an error; if true they
  // are ignored (libtorrent ignores them in .torrent files).
  bool allow_trailing_bytes = false;
};

class BDocument;
struct BEntry;

// A view of one value in a BDocument. A cheap value type (a pointer and an
// index); valid while its document lives. A default-constructed node, or a
// failed lookup, is "none": it converts to false and every accessor returns an
// empty result.
class BNode {
 public:
  enum class Type : uint8_t { kNone, kInt, kString, kList, kDict };

  BNode() = default;

  Type type() const;
  explicit operator bool() const { return type() != Type::kNone; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_string() const { return type() == Type::kString; }
  bool is_list() const { return type() == Type::kList; }
  bool is_dict() const { return type() == Type::kDict; }

  // The integer; 0 unless is_int().
  int64_t int_value() const;
  // The string's bytes (a view into the buffer); empty unless is_string().
  std::string_view string_value() const;
  // The exact bytes that encode this value, e.g. "d4:name3:abce".
  std::string_view raw() const;
  // Byte offset of this value's first byte in the decoded buffer.
  size_t offset() const;

  // Iterates the children of a list, or the keys and values of a dictionary
  // alternately (key, value, key, value...). Empty for other types.
  class ChildIterator {
   public:
    BNode operator*() const { return BNode(doc_, index_); }
    ChildIterator& operator++();
    bool operator==(const ChildIterator& o) const { return index_ == o.index_; }

   private:
    friend class BNode;
    ChildIterator(const BDocument* doc, uint32_t index)
        : doc_(doc), index_(index) {}
    const BDocument* doc_;
    uint32_t index_;
  };
  struct Children {
    ChildIterator b, e;
    ChildIterator begin() const { return b; }
    ChildIterator end() const { return e; }
  };
  Children children() const;

  // Number of elements of a list, or of entries of a dictionary. O(n).
  size_t size() const;
  // The list's elements, in order. O(n).
  std::vector<BNode> list_items() const;

  // The dictionary's entries in encoded order. O(n).
  std::vector<BEntry> dict_items() const;

  // Dictionary lookups: the value under `key`, or none if this is not a
  // dictionary, the key is absent, or (typed variants) the value has another
  // type. Linear in the number of entries.
  BNode Find(std::string_view key) const;
  BNode FindDict(std::string_view key) const;
  BNode FindList(std::string_view key) const;
  std::optional<std::string_view> FindString(std::string_view key) const;
  std::optional<int64_t> FindInt(std::string_view key) const;

 private:
  friend class BDocument;
  BNode(const BDocument* doc, uint32_t index) : doc_(doc), index_(index) {}

  const BDocument* doc_ = nullptr;
  uint32_t index_ = 0;
};

// One entry of a dictionary.
struct BEntry {
  std::string_view key;
  size_t key_offset = 0;  // byte offset of the key in the buffer
  BNode value;
};

// The tokens of one decoded buffer. Movable, not copyable (nodes point at it).
// Thread-compatible: const methods may be called concurrently.
class BDocument {
 public:
  BDocument(BDocument&&) = default;
  BDocument& operator=(BDocument&&) = default;
  BDocument(const BDocument&) = delete;
  BDocument& operator=(const BDocument&) = delete;

  BNode root() const { return BNode(this, 0); }
  // The buffer this document views.
  std::string_view buffer() const { return buffer_; }
  // How many bytes the top-level value occupies (less than buffer().size() if
  // trailing bytes were allowed and present).
  size_t consumed() const { return consumed_; }
  size_t num_tokens() const { return tokens_.size(); }

  // If `node`'s bytes hold a non-canonical encoding (leading zeros, "-0", keys
  // unsorted or repeated), a description with its byte offset; else nullopt.
  std::optional<std::string> FirstNonCanonicalIn(const BNode& node) const;

 private:
  friend class BNode;
  friend absl::StatusOr<BDocument> Bdecode(std::string_view,
                                           const BdecodeOptions&);
  BDocument() = default;

  struct Token {
    uint32_t offset;  // first byte of the value
    uint32_t end;     // one past its last byte
    uint32_t next;    // index of the token after this value's subtree
    uint32_t data;    // strings: offset of the payload
    int64_t value;    // integers
    BNode::Type type;
  };
  struct NonCanonical {
    uint32_t offset;
    const char* what;
  };

  std::string_view buffer_;
  size_t consumed_ = 0;
  std::vector<Token> tokens_;
  std::vector<NonCanonical> non_canonical_;  // sorted by offset
};

// Decodes one bencoded value from `buffer`. Returns INVALID_ARGUMENT saying
// what is wrong and at which byte offset (malformed input, a limit exceeded,
// truncation). The returned document views `buffer`, which must outlive it.
// REQUIRES: buffer.size() < 4 GiB (larger buffers are rejected).
absl::StatusOr<BDocument> Bdecode(std::string_view buffer,
                                  const BdecodeOptions& options = {});

}  // namespace shoal::codec

#endif  // SHOAL_CODEC_BDECODE_H_
