// Hardware CRC32C for RocksDB.
//
// Debian's librocksdb is a portable build: its CRC32C (which checksums every
// WAL record and every blob) runs a table-driven loop that profiling showed at
// a third of all CPU time while adding content. RocksDB calls
// `rocksdb::crc32c::Extend` through the PLT, so this library defines that
// function itself, with Intel ISA-L's accelerated crc32_iscsi (the same CRC32C
// polynomial and conventions); the dynamic linker binds librocksdb's calls to
// it. The on-disk format is unchanged: the checksums are bit for bit the ones
// RocksDB computes.
#ifndef SHOAL_STORE_INTERNAL_FAST_CRC32C_H_
#define SHOAL_STORE_INTERNAL_FAST_CRC32C_H_

namespace shoal::store::internal {

// True if RocksDB's CRC32C calls reach the accelerated implementation and it
// computes the standard check value. Call once at startup; the result is for
// logging.
bool FastCrc32cActive();

}  // namespace shoal::store::internal

#endif  // SHOAL_STORE_INTERNAL_FAST_CRC32C_H_
