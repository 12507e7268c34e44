#include "utp/stack.h"

namespace shoal::utp {

Stack::Stack(Options options, SendTo send_to, std::function<uint64_t()> random)
    : options_(std::move(options)),
      send_to_(std::move(send_to)),
      random_(std::move(random)) {}

Connection::Send Stack::SendFunction(const PeerEndpoint& to) {
  return [this, to](std::string_view datagram) { send_to_(to, datagram); };
}

void Stack::Reset(const PeerEndpoint& to, const Packet& p) {
  Header h;
  h.type = PacketType::kReset;
  h.connection_id = p.header.connection_id;
  h.seq_nr = static_cast<uint16_t>(random_());
  h.ack_nr = p.header.seq_nr;
  std::string datagram;
  AppendPacket(h, {}, {}, datagram);
  ++stats_.resets_sent;
  send_to_(to, datagram);
}

std::shared_ptr<Connection> Stack::Connect(const PeerEndpoint& to,
                                           uint64_t now_us) {
  uint16_t id = 0;
  for (int i = 0; i < 64; ++i) {
    id = static_cast<uint16_t>(random_());
    if (!connections_.contains({to, id})) break;
  }
  std::shared_ptr<Connection> c =
      Connection::Connect(to, id, static_cast<uint16_t>(random_()),
                          options_.connection, SendFunction(to), now_us);
  connections_[{to, id}] = c;
  return c;
}

void Stack::OnDatagram(const PeerEndpoint& from, std::string_view datagram,
                       uint64_t now_us) {
  ++stats_.datagrams_in;
  absl::StatusOr<Packet> p = ParsePacket(datagram);
  if (!p.ok()) {
    ++stats_.malformed;
    return;
  }
  const Header& h = p->header;
  if (h.type == PacketType::kSyn) {
    const Key key{from, static_cast<uint16_t>(h.connection_id + 1)};
    auto it = connections_.find(key);
    if (it != connections_.end()) {
      std::shared_ptr<Connection> c = it->second;
      c->OnPacket(*p, now_us);  // a repeated SYN: ack it again
      acks_.push_back(c);
      return;
    }
    if (!accept_ || connections_.size() >= options_.max_connections) {
      ++stats_.refused;
      Reset(from, *p);
      return;
    }
    std::shared_ptr<Connection> c =
        Connection::Accept(from, *p, static_cast<uint16_t>(random_()),
                           options_.connection, SendFunction(from), now_us);
    connections_[key] = c;
    accept_(c);
    return;
  }
  auto it = connections_.find({from, h.connection_id});
  if (it == connections_.end()) {
    if (h.type != PacketType::kReset) Reset(from, *p);
    return;
  }
  std::shared_ptr<Connection> c = it->second;
  c->OnPacket(*p, now_us);
  acks_.push_back(c);
}

void Stack::FlushAcks(uint64_t now_us) {
  std::vector<std::weak_ptr<Connection>> owed;
  owed.swap(acks_);
  for (const auto& w : owed)
    if (auto c = w.lock()) c->FlushAck(now_us);
}

void Stack::Tick(uint64_t now_us) {
  std::vector<std::shared_ptr<Connection>> all;
  all.reserve(connections_.size());
  for (const auto& [key, c] : connections_) all.push_back(c);
  for (const auto& c : all) c->Tick(now_us);
  std::erase_if(connections_, [](const auto& e) {
    return e.second->state() == Connection::State::kClosed;
  });
}

}  // namespace shoal::utp
