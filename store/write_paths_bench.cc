// Two ways of making 1 GiB of 1 MiB chunks durable in RocksDB, keyed by their
// hashes as the `chunks` column family is (docs/ARCHITECTURE.md, "The data
// path"), with the same options as the store:
//   memtable  the store's path for a fetch: each chunk (and a small `haves`
//             entry) is a write without the WAL into 4 MiB memtables (three at
//             most), flushed by two threads into blob files; one flush at the
//             end makes the rest durable.
//   ingest    the candidate the data-path issue named: chunks go straight into
//             SST files (SstFileWriter, one per BATCH_MIB, keys sorted within
//             it), each moved into the tree with IngestExternalFile. The run
//             ends once the compactions it caused have finished, since those
//             rewrite the bytes: hash keys of every batch span the whole key
//             space, so every file overlaps the ones ingested before it.
//   ingest-seq  the same, keyed by arrival order instead (see Ingest).
// Prints time, CPU and bytes written to the disk of each (/proc/self/io), and
// first what making the chunks' bytes costs (part of both).
//
//   write_paths_bench [SIZE_MIB] [BATCH_MIB] [DIR]   (1024, 64, $TMPDIR)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "store/internal/fast_crc32c.h"
#include "store/internal/rocksdb_chunk_store.h"

namespace {

constexpr size_t kChunk = 1 << 20;

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

uint64_t DiskWriteBytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

// Chunk i: a pseudo-random key (as a hash is) and 1 MiB of bytes derived from
// it, so that neither path has to hold more than it would in the store.
std::string Key(uint64_t i) {
  std::mt19937_64 rng(i * 0x9E3779B97F4A7C15ull + 1);
  std::string k(32, '\0');
  for (size_t j = 0; j < k.size(); j += 8) {
    uint64_t v = rng();
    std::memcpy(&k[j], &v, 8);
  }
  return k;
}

void Fill(const std::string& key, std::string& value) {
  uint64_t seed = 0;
  std::memcpy(&seed, key.data(), 8);
  std::mt19937_64 rng(seed);
  value.resize(kChunk);
  for (size_t j = 0; j < kChunk; j += 8) {
    uint64_t v = rng();
    std::memcpy(&value[j], &v, 8);
  }
}

struct Db {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;  // default, chunks, haves
  ~Db() {
    for (auto* h : cfs) db->DestroyColumnFamilyHandle(h);
  }
};

// The store's options (store/chunk_store.cc).
void Open(const std::string& dir, Db& d) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName,
       shoal::store::internal::SmallCfOptions()},
      {"chunks", shoal::store::internal::BlobCfOptions()},
      {"haves", shoal::store::internal::SmallCfOptions()}};
  const rocksdb::DBOptions o = shoal::store::internal::StoreDbOptions();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, dir, cfs, &d.cfs, &raw);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    std::exit(1);
  }
  d.db.reset(raw);
}

void Check(const rocksdb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

void WaitForCompactions(rocksdb::DB* db) {
  for (;;) {
    uint64_t pending = 0, running = 0;
    db->GetIntProperty("rocksdb.compaction-pending", &pending);
    db->GetIntProperty("rocksdb.num-running-compactions", &running);
    if (pending == 0 && running == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Memtable(Db& d, uint64_t chunks) {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  std::string value;
  for (uint64_t i = 0; i < chunks; ++i) {
    const std::string key = Key(i);
    Fill(key, value);
    rocksdb::WriteBatch batch(kChunk + 256);
    Check(batch.Put(d.cfs[1], key, value), "batch");
    Check(batch.Put(d.cfs[2], "c" + std::to_string(i), key), "batch");
    Check(d.db->Write(wo, &batch), "write");
  }
  Check(d.db->Flush(rocksdb::FlushOptions(), {d.cfs[1], d.cfs[2]}), "flush");
}

// Writes the chunks `ids` (in that order, under `key(id)`) into one SST file
// and moves it into `chunks`.
template <typename KeyOf>
void WriteAndIngest(Db& d, const std::string& path,
                    const std::vector<uint64_t>& ids, KeyOf key) {
  rocksdb::Options options;
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), options, d.cfs[1]);
  Check(writer.Open(path), "sst open");
  std::string value;
  for (uint64_t i : ids) {
    Fill(Key(i), value);
    Check(writer.Put(key(i), value), "sst put");
  }
  Check(writer.Finish(), "sst finish");
  rocksdb::IngestExternalFileOptions io;
  io.move_files = true;
  Check(d.db->IngestExternalFile(d.cfs[1], {path}, io), "ingest");
}

// Big-endian, so that the keys of later chunks sort after earlier ones.
std::string SequenceKey(uint64_t i) {
  std::string k(8, '\0');
  for (int j = 7; j >= 0; --j, i >>= 8) k[j] = static_cast<char>(i & 0xff);
  return k;
}

// by_hash: each file holds its batch's chunks under their hashes, in key order.
// Otherwise under their arrival sequence numbers: each file's range lies above
// every earlier one, so nothing overlaps, each goes straight to the last level
// and nothing is compacted; an index from hash to sequence number (here in
// `haves`) would then be needed to find a chunk.
void Ingest(Db& d, const std::string& dir, uint64_t chunks, uint64_t batch,
            bool by_hash) {
  for (uint64_t first = 0, n = 0; first < chunks; first += batch, ++n) {
    const uint64_t last = std::min(chunks, first + batch);
    std::vector<std::pair<std::string, uint64_t>> keys;
    for (uint64_t i = first; i < last; ++i) {
      keys.emplace_back(by_hash ? Key(i) : SequenceKey(i), i);
    }
    std::sort(keys.begin(), keys.end());
    std::vector<uint64_t> ids;
    for (const auto& [key, i] : keys) ids.push_back(i);
    const std::string path = dir + "/ingest-" + std::to_string(n) + ".sst";
    if (by_hash) {
      WriteAndIngest(d, path, ids, Key);
    } else {
      WriteAndIngest(d, path, ids, SequenceKey);
    }
    rocksdb::WriteOptions wo;
    for (uint64_t i = first; i < last; ++i) {
      Check(d.db->Put(wo, d.cfs[2], by_hash ? "c" + std::to_string(i) : Key(i),
                      by_hash ? Key(i) : SequenceKey(i)),
            "have");
    }
  }
  Check(d.db->Flush(rocksdb::FlushOptions(), {d.cfs[1], d.cfs[2]}), "flush");
  WaitForCompactions(d.db.get());
}

void Report(const char* name, uint64_t bytes, double secs, double cpu,
            uint64_t written) {
  std::printf(
      "%-10s %7.2f s %8.1f MB/s   CPU %6.2f s   written to disk %7.1f MB"
      " (%.2fx the data)\n",
      name, secs, static_cast<double>(bytes) / secs / 1e6, cpu,
      static_cast<double>(written) / 1e6,
      static_cast<double>(written) / static_cast<double>(bytes));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t size_mib =
      argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const uint64_t batch_mib =
      argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64;
  const std::filesystem::path base =
      argc > 3 ? std::filesystem::path(argv[3])
               : std::filesystem::temp_directory_path();
  if (size_mib == 0 || batch_mib == 0) {
    std::fprintf(stderr,
                 "usage: write_paths_bench [SIZE_MIB] [BATCH_MIB] [DIR]\n");
    return 2;
  }
  if (!shoal::store::internal::FastCrc32cActive()) {
    std::fprintf(
        stderr,
        "write_paths_bench: ISA-L's CRC32C is not the one RocksDB calls\n");
    return 1;
  }
  const std::string root =
      (base / ("shoal_write_paths_" + std::to_string(::getpid()))).string();
  std::printf("== %" PRIu64
              " MiB of 1 MiB chunks keyed by hash, made durable; ingest "
              "batches of %" PRIu64 " MiB\n",
              size_mib, batch_mib);
  {  // What making the chunks costs, in both paths alike.
    std::string value;
    const double cpu0 = CpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < size_mib; ++i) Fill(Key(i), value);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    Report("(making)", size_mib << 20, secs, CpuSeconds() - cpu0, 0);
  }
  for (const char* name : {"memtable", "ingest", "ingest-seq"}) {
    const std::string dir = root + "-" + name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::system("sync");
    {
      Db d;
      Open(dir, d);
      const double cpu0 = CpuSeconds();
      const uint64_t w0 = DiskWriteBytes();
      const auto t0 = std::chrono::steady_clock::now();
      if (std::strcmp(name, "memtable") == 0) {
        Memtable(d, size_mib);
      } else {
        Ingest(d, dir, size_mib, batch_mib, std::strcmp(name, "ingest") == 0);
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count();
      Report(name, size_mib << 20, secs, CpuSeconds() - cpu0,
             DiskWriteBytes() - w0);
    }
    std::filesystem::remove_all(dir);
  }
  return 0;
}
