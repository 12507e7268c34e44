#include "chunk/torrent_creator.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <latch>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "chunk/merkle.h"
#include "codec/bencode.h"

namespace shoal::chunk {

using codec::Sha1;
using codec::Sha1Digest;
using codec::Sha256Digest;
namespace bencode = codec::bencode;
namespace {

struct SourceFile {
  std::vector<std::string> components;  // below the torrent's root
  std::filesystem::path fs_path;
  uint64_t length = 0;
  bool executable = false;
  uint64_t offset = 0;     // in the (padded, for v2/hybrid) stream
  uint64_t pad_after = 0;  // v2/hybrid: pad file bytes after this file
};

absl::Status ErrnoStatus(std::string_view what, const std::filesystem::path& p,
                         int err) {
  std::string msg = absl::StrCat(std::string(what), " ", p.string(), ": ",
                                 std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

absl::StatusOr<SourceFile> StatFile(const std::filesystem::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return ErrnoStatus("cannot stat", p, errno);
  SourceFile f;
  f.fs_path = p;
  f.length = static_cast<uint64_t>(st.st_size);
  f.executable = (st.st_mode & S_IXUSR) != 0;
  return f;
}

// Lists the files to include, in v2 file-tree order.
absl::StatusOr<std::vector<SourceFile>> ScanSource(
    const std::filesystem::path& source, bool& single_file) {
  std::error_code ec;
  auto status = std::filesystem::symlink_status(source, ec);
  if (ec || !std::filesystem::exists(status)) {
    return absl::NotFoundError(
        absl::StrCat("no such file or directory: ", source.string()));
  }
  std::vector<SourceFile> files;
  if (std::filesystem::is_regular_file(status)) {
    single_file = true;
    SHOAL_ASSIGN_OR_RETURN(SourceFile f, StatFile(source));
    files.push_back(std::move(f));
    return files;
  }
  if (!std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source.string(), " is neither a regular file nor a directory"));
  }
  single_file = false;
  std::filesystem::recursive_directory_iterator it(source, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    SHOAL_ASSIGN_OR_RETURN(SourceFile f, StatFile(it->path()));
    for (const auto& c : it->path().lexically_relative(source)) {
      f.components.push_back(c.string());
    }
    files.push_back(std::move(f));
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list ", source.string(), ": ", ec.message()));
  }
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) {
              return a.components < b.components;
            });
  return files;
}

// Reads exactly data.size() bytes at `offset` of `path`.
absl::Status ReadAt(const std::filesystem::path& path, uint64_t offset,
                    std::span<uint8_t> data) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  size_t done = 0;
  absl::Status status;
  while (done < data.size()) {
    ssize_t n = ::pread(fd, data.data() + done, data.size() - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      status = ErrnoStatus("cannot read", path, errno);
      break;
    }
    if (n == 0) {
      status = absl::DataLossError(
          absl::StrCat(path.string(), " shrank while it was being hashed"));
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return status;
}

struct HashResults {
  std::vector<Sha1Digest> v1;                     // per piece
  std::vector<std::vector<Sha256Digest>> layers;  // per file (> 1 piece)
  std::vector<Sha256Digest> roots;                // per file
};

class Hasher {
 public:
  Hasher(std::vector<SourceFile>& files, uint64_t total, uint32_t piece_length,
         bool want_v1, bool want_v2)
      : files_(files),
        total_(total),
        piece_length_(piece_length),
        want_v1_(want_v1),
        want_v2_(want_v2) {
    num_pieces_ = (total + piece_length - 1) / piece_length;
    if (want_v1_) results_.v1.resize(num_pieces_);
    results_.layers.resize(files.size());
    results_.roots.resize(files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      if (files[i].length > piece_length) {
        results_.layers[i].resize((files[i].length + piece_length - 1) /
                                  piece_length);
      }
    }
  }

  absl::StatusOr<HashResults> Run(int threads) {
    const uint64_t per_task =
        std::max<uint64_t>(1, (uint64_t{8} << 20) / piece_length_);
    const uint64_t tasks = (num_pieces_ + per_task - 1) / per_task;
    std::latch done(static_cast<std::ptrdiff_t>(tasks));
    {
      ThreadPool pool(threads);
      for (uint64_t t = 0; t < tasks; ++t) {
        uint64_t first = t * per_task;
        uint64_t last = std::min(num_pieces_, first + per_task);
        pool.Post([this, first, last, &done] {
          HashPieces(first, last);
          done.count_down();
        });
      }
      done.wait();
    }
    if (!error_.ok()) return error_;
    for (size_t i = 0; i < files_.size(); ++i) {
      if (!results_.layers[i].empty()) {
        results_.roots[i] =
            PiecesRootFromLayer(results_.layers[i], piece_length_);
      }
    }
    return std::move(results_);
  }

 private:
  void Fail(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = std::move(s);
  }

  // Index of the last file whose offset <= pos.
  size_t FileAt(uint64_t pos) const {
    auto it = std::upper_bound(
        files_.begin(), files_.end(), pos,
        [](uint64_t p, const SourceFile& f) { return p < f.offset; });
    return static_cast<size_t>(it - files_.begin()) - 1;
  }

  void HashPieces(uint64_t first, uint64_t last) {
    std::vector<uint8_t> buf(piece_length_);
    Sha1 sha1;
    for (uint64_t p = first; p < last; ++p) {
      const uint64_t start = p * piece_length_;
      const uint64_t size = std::min<uint64_t>(piece_length_, total_ - start);
      std::fill(buf.begin(), buf.begin() + size, 0);
      // Copy every file's bytes that fall into [start, start + size).
      for (size_t i = FileAt(start); i < files_.size(); ++i) {
        const SourceFile& f = files_[i];
        if (f.offset >= start + size) break;
        const uint64_t from = std::max(start, f.offset);
        const uint64_t to = std::min(start + size, f.offset + f.length);
        if (from >= to) continue;
        absl::Status s = ReadAt(f.fs_path, from - f.offset,
                                {buf.data() + (from - start), to - from});
        if (!s.ok()) return Fail(std::move(s));
      }
      if (want_v1_) {
        sha1.Update(std::span<const uint8_t>(buf.data(), size));
        results_.v1[p] = sha1.Final();
      }
      if (want_v2_) {
        // Aligned layout: the piece belongs to exactly one file.
        size_t i = FileAt(start);
        while (i > 0 && files_[i].length == 0) --i;
        const SourceFile& f = files_[i];
        if (f.length == 0 || start >= f.offset + f.length) continue;
        const uint64_t len =
            std::min<uint64_t>(piece_length_, f.offset + f.length - start);
        std::span<const uint8_t> data(buf.data(), len);
        if (f.length > piece_length_) {
          results_.layers[i][(start - f.offset) / piece_length_] =
              BlockTreeRoot(data, piece_length_ / kBlockSize);
        } else {
          results_.roots[i] =
              BlockTreeRoot(data, NextPowerOfTwo(NumBlocks(len)));
        }
      }
    }
  }

  std::vector<SourceFile>& files_;
  const uint64_t total_;
  const uint32_t piece_length_;
  const bool want_v1_;
  const bool want_v2_;
  uint64_t num_pieces_ = 0;
  HashResults results_;  // each task writes only its own pieces' slots
  std::mutex mu_;
  absl::Status error_;  // guarded by mu_
};

std::string DigestString(std::span<const uint8_t> d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

bencode::List PathList(const std::vector<std::string>& components) {
  bencode::List l;
  for (const auto& c : components) l.emplace_back(c);
  return l;
}

}  // namespace

uint32_t AutoPieceLength(uint64_t total_size) {
  uint64_t want = NextPowerOfTwo((total_size + 1023) / 1024);
  return static_cast<uint32_t>(
      std::clamp<uint64_t>(want, kMinAutoPieceLength, kMaxAutoPieceLength));
}

absl::StatusOr<std::string> CreateTorrent(
    const TorrentCreatorOptions& options) {
  const bool want_v1 = options.version != TorrentVersion::kV2;
  const bool want_v2 = options.version != TorrentVersion::kV1;
  const MetainfoLimits limits;
  if (options.piece_length != 0 &&
      (options.piece_length < kBlockSize ||
       (options.piece_length & (options.piece_length - 1)) != 0 ||
       options.piece_length > limits.max_piece_length)) {
    return absl::InvalidArgumentError(
        absl::StrCat("piece size ", options.piece_length,
                     " must be a power of two between 16 KiB and ",
                     limits.max_piece_length / (1024 * 1024), " MiB"));
  }
  std::filesystem::path source = options.source.lexically_normal();
  if (source.has_relative_path() && !source.has_filename()) {
    source = source.parent_path();  // "dir/" names the directory "dir"
  }
  std::string name = std::filesystem::absolute(source).filename().string();
  if (name.empty() || name == "." || name == "..") {
    name = std::filesystem::absolute(source)
               .lexically_normal()
               .parent_path()
               .filename()
               .string();
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot name a torrent of ", source.string()));
  }

  bool single_file = false;
  SHOAL_ASSIGN_OR_RETURN(std::vector<SourceFile> files,
                         ScanSource(source, single_file));
  if (files.size() > limits.max_files) {
    return absl::InvalidArgumentError(absl::StrCat(
        files.size(), " files is more than the limit of ", limits.max_files));
  }
  uint64_t content = 0;
  for (const SourceFile& f : files) content += f.length;
  if (content == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source.string(), " holds no data (BitTorrent cannot share 0 bytes)"));
  }
  const uint32_t piece_length = options.piece_length != 0
                                    ? options.piece_length
                                    : AutoPieceLength(content);

  // Stream layout: for v2 and hybrid, a pad after each non-empty file that
  // does not end on a piece boundary, except after the last non-empty file.
  size_t last_data = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].length > 0) last_data = i;
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    SourceFile& f = files[i];
    f.offset = offset;
    offset += f.length;
    if (want_v2 && f.length > 0 && i < last_data &&
        offset % piece_length != 0) {
      f.pad_after = piece_length - offset % piece_length;
      offset += f.pad_after;
    }
  }
  const uint64_t total = offset;
  const uint64_t num_pieces = (total + piece_length - 1) / piece_length;
  if (num_pieces > limits.max_pieces) {
    return absl::InvalidArgumentError(
        absl::StrCat(num_pieces, " pieces is more than the limit of ",
                     limits.max_pieces, "; use a larger piece size"));
  }

  int threads =
      options.num_threads > 0 ? options.num_threads : ThreadPool::DefaultSize();
  Hasher hasher(files, total, piece_length, want_v1, want_v2);
  SHOAL_ASSIGN_OR_RETURN(HashResults hashes, hasher.Run(threads));

  bencode::Dict info;
  info["name"] = name;
  info["piece length"] = int64_t{piece_length};
  if (options.is_private) info["private"] = int64_t{1};
  if (want_v1) {
    std::string pieces;
    pieces.reserve(hashes.v1.size() * 20);
    for (const Sha1Digest& d : hashes.v1) pieces.append(DigestString(d));
    info["pieces"] = std::move(pieces);
    if (single_file) {
      info["length"] = static_cast<int64_t>(files[0].length);
    } else {
      bencode::List list;
      for (const SourceFile& f : files) {
        bencode::Dict d;
        d["length"] = static_cast<int64_t>(f.length);
        d["path"] = PathList(f.components);
        if (f.executable) d["attr"] = "x";
        list.emplace_back(std::move(d));
        if (f.pad_after > 0) {
          bencode::Dict pad;
          pad["attr"] = "p";
          pad["length"] = static_cast<int64_t>(f.pad_after);
          pad["path"] = bencode::List{".pad", absl::StrCat(f.pad_after)};
          list.emplace_back(std::move(pad));
        }
      }
      info["files"] = std::move(list);
    }
  }
  bencode::Dict layers;
  if (want_v2) {
    info["meta version"] = int64_t{2};
    bencode::Dict tree;
    for (size_t i = 0; i < files.size(); ++i) {
      const SourceFile& f = files[i];
      std::vector<std::string> comps =
          single_file ? std::vector<std::string>{name} : f.components;
      bencode::Dict* dir = &tree;
      for (size_t c = 0; c + 1 < comps.size(); ++c) {
        auto [it, inserted] = dir->try_emplace(comps[c], bencode::Dict{});
        dir = &it->second.as_dict();
      }
      bencode::Dict leaf;
      leaf["length"] = static_cast<int64_t>(f.length);
      if (f.length > 0) {
        leaf["pieces root"] = DigestString(hashes.roots[i]);
      }
      if (f.executable) leaf["attr"] = "x";
      bencode::Dict entry;
      entry[""] = std::move(leaf);
      (*dir)[comps.back()] = std::move(entry);
      if (!hashes.layers[i].empty()) {
        std::string layer;
        for (const Sha256Digest& d : hashes.layers[i]) {
          layer.append(DigestString(d));
        }
        layers[DigestString(hashes.roots[i])] = std::move(layer);
      }
    }
    info["file tree"] = std::move(tree);
  }

  bencode::Dict torrent;
  if (!options.trackers.empty()) {
    torrent["announce"] = options.trackers[0];
    if (options.trackers.size() > 1) {
      bencode::List tiers;
      for (const auto& t : options.trackers)
        tiers.emplace_back(bencode::List{t});
      torrent["announce-list"] = std::move(tiers);
    }
  }
  if (!options.comment.empty()) torrent["comment"] = options.comment;
  if (!options.created_by.empty()) torrent["created by"] = options.created_by;
  if (options.creation_date) torrent["creation date"] = *options.creation_date;
  if (!options.web_seeds.empty()) {
    if (options.web_seeds.size() == 1) {
      torrent["url-list"] = options.web_seeds[0];
    } else {
      bencode::List l;
      for (const auto& w : options.web_seeds) l.emplace_back(w);
      torrent["url-list"] = std::move(l);
    }
  }
  torrent["info"] = std::move(info);
  if (want_v2) torrent["piece layers"] = std::move(layers);
  return bencode::Encode(bencode::Value(std::move(torrent)));
}

}  // namespace shoal::chunk
