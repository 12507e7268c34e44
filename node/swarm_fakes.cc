#include "node/swarm_fakes.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "chunk/bitfield.h"

namespace shoal::node::testing {

// --- FakeEnv

class FakeEnv::FakeTicker final : public Ticker {
 public:
  FakeTicker(FakeEnv* env, uint64_t id) : env_(env), id_(id) {}
  ~FakeTicker() override { env_->tickers_.erase(id_); }

 private:
  FakeEnv* env_;
  uint64_t id_;
};

std::unique_ptr<Ticker> FakeEnv::EverySecond(std::function<void()> tick) {
  const uint64_t id = next_ticker_++;
  tickers_[id] = std::move(tick);
  return std::make_unique<FakeTicker>(this, id);
}

size_t FakeEnv::RunQueued(size_t max) {
  size_t n = 0;
  while (!queue_.empty() && n < max) {
    std::function<void()> fn = std::move(queue_.front());
    queue_.pop_front();
    fn();
    ++n;
  }
  return n;
}

void FakeEnv::TickAll() {
  ++seconds_;
  std::vector<uint64_t> ids;
  for (const auto& [id, fn] : tickers_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = tickers_.find(id);  // an earlier tick may have removed it
    if (it != tickers_.end()) {
      std::function<void()> fn = it->second;
      fn();
    }
  }
}

// --- FakeLink

void FakeLink::Send(std::string bytes) {
  if (closed_) return;
  if (tamper_) tamper_(bytes);
  bytes_sent_ += bytes.size();
  if (auto other = other_.lock()) other->inbox_ += bytes;
}

void FakeLink::Send(const wire::Message& message) {
  std::string bytes;
  wire::AppendMessage(message, bytes);
  Send(std::move(bytes));
}

void FakeLink::Close(const absl::Status& why) {
  if (closed_) return;
  closed_ = true;
  close_status_ = why;
  if (auto other = other_.lock()) net_->remote_closed_.push_back(other);
  if (handler_) handler_->OnClose(*this, why);
}

bool FakeLink::Deliver() {
  if (closed_ || inbox_.empty()) return false;
  // The handler may send, which never appends to this inbox; take it whole.
  std::string data = std::move(inbox_);
  inbox_.clear();
  std::string_view view(data);
  bool any = false;
  while (!closed_) {
    const size_t before = view.size();
    const char* start = view.data();
    auto m = wire::ParseMessage(view);
    if (!m.ok()) {
      Close(m.status());
      return true;
    }
    if (!m->has_value()) break;
    bytes_received_ += before - view.size();
    any = true;
    if (handler_) {
      handler_->OnMessage(*this, **m);
    } else {
      received_.emplace_back(start, before - view.size());
    }
  }
  if (!closed_) inbox_.insert(0, view);
  return any;
}

// --- FakeNet

PeerEndpoint FakeNet::AddressOf(const Swarm& s) {
  auto it = addresses_.find(&s);
  if (it != addresses_.end()) return it->second;
  const size_t n = addresses_.size() + 1;
  PeerEndpoint e;
  e.family = AddressFamily::kV4;
  e.address[0] = 10;
  e.address[1] = static_cast<uint8_t>(n >> 16);
  e.address[2] = static_cast<uint8_t>(n >> 8);
  e.address[3] = static_cast<uint8_t>(n);
  e.port = 6881;
  addresses_[&s] = e;
  return e;
}

std::pair<std::shared_ptr<FakeLink>, std::shared_ptr<FakeLink>> FakeNet::Pair(
    const PeerEndpoint& a, const PeerEndpoint& b) {
  // a's link sees b as its remote, and the other way round.
  auto la = std::make_shared<FakeLink>(this, next_key_++, b);
  auto lb = std::make_shared<FakeLink>(this, next_key_++, a);
  la->other_ = lb;
  lb->other_ = la;
  links_.push_back(la);
  links_.push_back(lb);
  return {la, lb};
}

namespace {

// The handshake of a peer at `at` joining `s`'s torrent: the peer ID comes
// from the address.
wire::Handshake HandshakeOf(const Swarm& s, const PeerEndpoint& at) {
  wire::Handshake h;
  h.set_extensions(true);
  h.set_fast(true);
  h.set_v2(s.hashes().v2.has_value());
  h.info_hash = s.handshake_hash();
  std::memcpy(h.peer_id.data(), "-SHtest-", 8);
  std::memcpy(h.peer_id.data() + 8, at.address.data(), 4);
  return h;
}

}  // namespace

void FakeNet::Connect(Swarm& dialer, Swarm& listener) {
  const PeerEndpoint a = AddressOf(dialer);
  const PeerEndpoint b = AddressOf(listener);
  auto [la, lb] = Pair(a, b);
  dialer.AddPeer(la, HandshakeOf(listener, b), /*incoming=*/false);
  listener.AddPeer(lb, HandshakeOf(dialer, a), /*incoming=*/true);
}

void FakeNet::ConnectCrossed(Swarm& a, Swarm& b) {
  const PeerEndpoint pa = AddressOf(a);
  const PeerEndpoint pb = AddressOf(b);
  a.set_own_peer_id(HandshakeOf(a, pa).peer_id);
  b.set_own_peer_id(HandshakeOf(b, pb).peer_id);
  auto [a_out, b_in] = Pair(pa, pb);
  auto [b_out, a_in] = Pair(pb, pa);
  a.AddPeer(a_out, HandshakeOf(b, pb), /*incoming=*/false);
  b.AddPeer(b_out, HandshakeOf(a, pa), /*incoming=*/false);
  a.AddPeer(a_in, HandshakeOf(b, pb), /*incoming=*/true);
  b.AddPeer(b_in, HandshakeOf(a, pa), /*incoming=*/true);
}

std::shared_ptr<FakeLink> FakeNet::ConnectScripted(Swarm& swarm) {
  const PeerEndpoint a = AddressOf(swarm);
  PeerEndpoint b;
  b.address = {10, 255, 0, static_cast<uint8_t>(next_key_ & 0xff)};
  b.port = 7000;
  auto [la, lb] = Pair(a, b);
  swarm.AddPeer(la, HandshakeOf(swarm, b), /*incoming=*/true);
  return lb;
}

void FakeNet::Pump(const std::function<bool()>& stop, int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    bool moved = env_.RunQueued() > 0;
    std::vector<std::weak_ptr<FakeLink>> closing;
    closing.swap(remote_closed_);
    for (auto& w : closing) {
      if (auto l = w.lock()) {
        l->Close(absl::UnavailableError("connection closed by the peer"));
        moved = true;
      }
    }
    // Links may be added while delivering: index, don't iterate.
    for (size_t i = 0; i < links_.size(); ++i) {
      std::shared_ptr<FakeLink> l = links_[i];
      moved |= l->Deliver();
    }
    std::erase_if(links_, [](const std::shared_ptr<FakeLink>& l) {
      return l->closed() && l.use_count() == 1;
    });
    if (!moved || (stop && stop())) return;
  }
}

bool FakeNet::RunUntil(const std::function<bool()>& done, int max_seconds) {
  Pump(done);
  for (int s = 0; s < max_seconds && !done(); ++s) {
    env_.TickAll();
    Pump(done);
  }
  return done();
}

// --- MemoryStorage

absl::Status MemoryStorage::WritePiece(uint32_t piece, std::string_view data) {
  pieces_[piece] = std::string(data);
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryStorage::ReadPiece(uint32_t piece) {
  auto it = pieces_.find(piece);
  if (it == pieces_.end())
    return absl::UnavailableError(absl::StrCat("no piece ", piece));
  std::string out = it->second;
  if (corrupt_.contains(piece) && !out.empty()) out[out.size() / 2] ^= 0x01;
  return out;
}

absl::StatusOr<std::string> MemoryStorage::ReadBlock(uint32_t piece,
                                                     uint32_t offset,
                                                     uint32_t length) {
  auto whole = ReadPiece(piece);
  if (!whole.ok()) return whole.status();
  if (uint64_t{offset} + length > whole->size())
    return absl::OutOfRangeError("past the piece's end");
  return whole->substr(offset, length);
}

// --- TestContent

TestContent TestContent::Make(size_t size, uint64_t seed) {
  TestContent c;
  std::mt19937_64 rng(seed);
  c.data.resize(size);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(c.data.data() + i, &v, std::min<size_t>(8, size - i));
  }
  c.layout = chunk::ContentLayout::ForLength(size);
  std::vector<chunk::Sha256Digest> layer;
  for (uint32_t i = 0; i < c.layout.num_pieces(); ++i) {
    const std::string_view piece = std::string_view(c.data).substr(
        c.layout.piece_offset(i), c.layout.piece_size(i));
    layer.push_back(chunk::HashPiece(
        {reinterpret_cast<const uint8_t*>(piece.data()), piece.size()},
        c.layout.piece_tree_levels(i)));
  }
  const chunk::Sha256Digest root = chunk::PiecesRoot(c.layout, layer);
  auto m = chunk::ParseInfoDict(chunk::CanonicalInfoDict(c.layout, root));
  c.metainfo = std::make_shared<chunk::Metainfo>(*std::move(m));
  if (layer.size() > 1) {
    std::string bytes;
    for (const auto& h : layer)
      bytes.append(reinterpret_cast<const char*>(h.data()), h.size());
    c.metainfo->piece_layers.assign(c.metainfo->files.size(), std::string());
    c.metainfo->piece_layers[0] = std::move(bytes);
  }
  c.hashes.v2 = chunk::InfoHashV2::Of(c.metainfo->info_bytes);
  return c;
}

// --- TestSwarm

void TestSwarm::StartSeeding() {
  seeding_ = true;
  SetMetadata(content_.metainfo);
}

void TestSwarm::Prepare() {
  const chunk::ContentLayout layout{metainfo()->total_size,
                                    metainfo()->piece_length};
  memory_ = std::make_shared<MemoryStorage>(layout);
  chunk::Bitfield have(layout.num_pieces(), seeding_);
  if (seeding_) {
    for (uint32_t i = 0; i < layout.num_pieces(); ++i) {
      memory_->pieces()[i] =
          content_.data.substr(layout.piece_offset(i), layout.piece_size(i));
    }
  }
  StartDownloading(memory_, have);
}

std::string TestSwarm::Bytes() const {
  std::string out;
  if (!memory_) return out;
  for (const auto& [i, bytes] : memory_->pieces()) out += bytes;
  return out;
}

}  // namespace shoal::node::testing
