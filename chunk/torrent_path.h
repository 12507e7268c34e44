// Sanitizing file paths that come from untrusted .torrent files.
//
// A torrent names its files with lists of path elements. Nothing in those
// elements may make Shoal write outside the save path, so every element is
// cleaned before it is joined with '/':
//
//   - '/' and '\' are removed (no element can hold a separator, so no element
//     can be absolute or walk up), as are the Unicode bidirectional controls
//     U+200E, U+200F and U+202A..U+202E (they disguise file extensions);
//   - control characters (< 0x20, 0x7f) are removed too;
//   - each byte of an invalid UTF-8 sequence becomes '_';
//   - an element that is empty, "." or ".." becomes "_";
//   - Windows reserved device names (CON, PRN, AUX, NUL, COM0-9, LPT0-9, with
//     or without an extension, any case) get a '_' prefix, so a torrent made
//     on Linux can be saved on Windows too;
//   - an element longer than 240 bytes is cut at a UTF-8 boundary, keeping a
//     short extension.
//
//   SanitizePathElement("..")         == "_"
//   SanitizePathElement("a/b\\c")     == "abc"
//   SanitizePathElement("nul.txt")    == "_nul.txt"
#ifndef SHOAL_CHUNK_TORRENT_PATH_H_
#define SHOAL_CHUNK_TORRENT_PATH_H_

#include <string>
#include <string_view>

namespace shoal::chunk {

// Returns `element` cleaned as described above; never empty, never "." or
// "..", never containing '/' or '\'.
std::string SanitizePathElement(std::string_view element);

// Only the character filtering of SanitizePathElement() (removals and '_' for
// invalid UTF-8): the result may be empty, "." or "..", and is not shortened.
std::string CleanPathElement(std::string_view element);

// The longest element SanitizePathElement() returns, in bytes.
inline constexpr size_t kMaxPathElementBytes = 240;

}  // namespace shoal::chunk

#endif  // SHOAL_CHUNK_TORRENT_PATH_H_
