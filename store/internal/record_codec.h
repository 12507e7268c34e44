// The on-disk encoding of content records (version 2):
//
//   u8 version | u64 length | u32 piece length | 32 pieces root | i64 added
//   (unix us) | i64 last access (unix us) | u16 name length | name | u32 pieces
//   | pieces x 32 hash | u8 flags | [directories: u32 dict length | info dict]
//
// flags: 1 = stored for directories only, 2 = a directory (no pieces). Version
// 1 records end after the pieces. Integers big-endian.
#ifndef SHOAL_STORE_INTERNAL_RECORD_CODEC_H_
#define SHOAL_STORE_INTERNAL_RECORD_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "store/chunk_store.h"

namespace shoal::store::internal {

void AppendBE32(std::string& out, uint32_t v);
void AppendBE64(std::string& out, uint64_t v);
// REQUIRES: in.size() >= 4 (8).
uint32_t ReadBE32(std::string_view in);
uint64_t ReadBE64(std::string_view in);

std::string EncodeRecord(const ContentRecord& record);
// `key` is the content ID. DATA_LOSS if `value` is malformed.
absl::StatusOr<ContentRecord> DecodeRecord(std::string_view key,
                                           std::string_view value);

}  // namespace shoal::store::internal

#endif  // SHOAL_STORE_INTERNAL_RECORD_CODEC_H_
