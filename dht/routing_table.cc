#include "dht/routing_table.h"

#include <algorithm>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::dht {

RoutingTable::RoutingTable(const NodeId& own_id, int k, int max_failures)
    : own_id_(own_id), k_(k), max_failures_(max_failures) {
  buckets_.emplace_back();
}

size_t RoutingTable::BucketIndex(const NodeId& id) const {
  size_t cpl = static_cast<size_t>(CommonPrefixLength(own_id_, id));
  return std::min(cpl, buckets_.size() - 1);
}

void RoutingTable::Touch(RoutingEntry& e, int64_t now_ms, Contact contact) {
  if (contact == Contact::kResponded) {
    e.last_response_ms = now_ms;
    e.failures = 0;
  } else if (contact == Contact::kQueried) {
    e.last_query_ms = now_ms;
  }
}

NodeStatus RoutingTable::StatusOf(const RoutingEntry& e, int64_t now_ms) const {
  if (e.failures >= max_failures_) return NodeStatus::kBad;
  if (e.last_response_ms >= 0 && e.failures == 0 &&
      (now_ms - e.last_response_ms < kGoodWindowMs ||
       (e.last_query_ms >= 0 && now_ms - e.last_query_ms < kGoodWindowMs))) {
    return NodeStatus::kGood;
  }
  return NodeStatus::kQuestionable;
}

RoutingEntry* RoutingTable::FindMutable(const NodeId& id, size_t* bucket) {
  size_t b = BucketIndex(id);
  *bucket = b;
  for (RoutingEntry& e : buckets_[b].nodes) {
    if (e.info.id == id) return &e;
  }
  return nullptr;
}

const RoutingEntry* RoutingTable::Find(const NodeId& id) const {
  for (const RoutingEntry& e : buckets_[BucketIndex(id)].nodes) {
    if (e.info.id == id) return &e;
  }
  return nullptr;
}

void RoutingTable::Split() {
  Bucket& last = buckets_.back();
  Bucket next;
  const size_t depth = buckets_.size() - 1;
  auto moves = [&](const RoutingEntry& e) {
    return static_cast<size_t>(CommonPrefixLength(own_id_, e.info.id)) > depth;
  };
  for (auto it = last.nodes.begin(); it != last.nodes.end();) {
    if (moves(*it)) {
      next.nodes.push_back(*it);
      it = last.nodes.erase(it);
    } else {
      ++it;
    }
  }
  std::deque<RoutingEntry> keep;
  for (RoutingEntry& e : last.replacements) {
    (moves(e) ? next.replacements : keep).push_back(e);
  }
  last.replacements = std::move(keep);
  next.last_changed_ms = last.last_changed_ms;
  buckets_.push_back(std::move(next));
  // Refill the shallower bucket from its cache.
  Bucket& shallow = buckets_[buckets_.size() - 2];
  while (shallow.nodes.size() < static_cast<size_t>(k_) &&
         !shallow.replacements.empty()) {
    shallow.nodes.push_back(shallow.replacements.back());
    shallow.replacements.pop_back();
  }
}

bool RoutingTable::Heard(const NodeInfo& node, int64_t now_ms,
                         Contact contact) {
  if (node.id == own_id_ || !node.endpoint.valid()) return false;
  size_t b;
  if (RoutingEntry* e = FindMutable(node.id, &b)) {
    // An ID seen at a new address is not trusted to move.
    if (e->info.endpoint != node.endpoint) return true;
    Touch(*e, now_ms, contact);
    if (contact == Contact::kResponded) buckets_[b].last_changed_ms = now_ms;
    return true;
  }
  RoutingEntry entry;
  entry.info = node;
  Touch(entry, now_ms, contact);
  for (;;) {
    b = BucketIndex(node.id);
    Bucket& bucket = buckets_[b];
    // Drop a stale copy from the cache.
    std::erase_if(bucket.replacements,
                  [&](const RoutingEntry& r) { return r.info.id == node.id; });
    if (bucket.nodes.size() < static_cast<size_t>(k_)) {
      bucket.nodes.push_back(entry);
      bucket.last_changed_ms = now_ms;
      return true;
    }
    if (b == buckets_.size() - 1 && buckets_.size() < NodeId::kBits) {
      Split();
      continue;
    }
    // Full: replace a bad node, else cache the newcomer.
    for (RoutingEntry& e : bucket.nodes) {
      if (StatusOf(e, now_ms) == NodeStatus::kBad) {
        e = entry;
        bucket.last_changed_ms = now_ms;
        return true;
      }
    }
    if (contact != Contact::kLoaded ||
        bucket.replacements.size() < static_cast<size_t>(k_)) {
      bucket.replacements.push_back(entry);
      if (bucket.replacements.size() > static_cast<size_t>(k_)) {
        bucket.replacements.pop_front();
      }
    }
    return false;
  }
}

void RoutingTable::Failed(const NodeId& id, const Endpoint& endpoint) {
  size_t b;
  RoutingEntry* e = FindMutable(id, &b);
  if (e == nullptr || e->info.endpoint != endpoint) return;
  ++e->failures;
  // One failure already spans the caller's retransmissions: with a
  // candidate in the cache, swap at once rather than keep a dead slot.
  Bucket& bucket = buckets_[b];
  if (bucket.replacements.empty()) return;
  // Prefer the most recently heard replacement that has answered us.
  auto best = bucket.replacements.end() - 1;
  for (auto it = bucket.replacements.end();
       it != bucket.replacements.begin();) {
    --it;
    if (it->last_response_ms >= 0) {
      best = it;
      break;
    }
  }
  *e = *best;
  bucket.replacements.erase(best);
}

void RoutingTable::Pinged(const NodeId& id, int64_t now_ms) {
  size_t b;
  if (RoutingEntry* e = FindMutable(id, &b)) e->last_ping_ms = now_ms;
}

std::vector<NodeInfo> RoutingTable::Closest(const NodeId& target,
                                            size_t count) const {
  std::vector<const RoutingEntry*> all;
  for (const Bucket& b : buckets_) {
    for (const RoutingEntry& e : b.nodes) {
      if (e.failures < max_failures_) all.push_back(&e);
    }
  }
  size_t n = std::min(count, all.size());
  std::partial_sort(all.begin(), all.begin() + n, all.end(),
                    [&](const RoutingEntry* a, const RoutingEntry* b) {
                      return CloserTo(target, a->info.id, b->info.id);
                    });
  std::vector<NodeInfo> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(all[i]->info);
  return out;
}

std::vector<NodeInfo> RoutingTable::NodesToPing(int64_t now_ms,
                                                int64_t interval_ms) const {
  std::vector<NodeInfo> out;
  for (const Bucket& b : buckets_) {
    for (const RoutingEntry& e : b.nodes) {
      if (StatusOf(e, now_ms) == NodeStatus::kQuestionable &&
          (e.last_ping_ms < 0 || now_ms - e.last_ping_ms >= interval_ms)) {
        out.push_back(e.info);
      }
    }
  }
  return out;
}

std::vector<NodeId> RoutingTable::BucketsToRefresh(
    int64_t now_ms, int64_t idle_ms, const std::function<uint64_t()>& random) {
  std::vector<NodeId> out;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (now_ms - buckets_[i].last_changed_ms < idle_ms) continue;
    buckets_[i].last_changed_ms = now_ms;
    out.push_back(
        NodeId::RandomWithPrefix(own_id_, static_cast<int>(i), random));
  }
  return out;
}

std::vector<NodeId> RoutingTable::AllRefreshTargets(
    int64_t now_ms, const std::function<uint64_t()>& random) {
  std::vector<NodeId> out;
  for (size_t i = 0; i + 1 < buckets_.size(); ++i) {
    buckets_[i].last_changed_ms = now_ms;
    out.push_back(
        NodeId::RandomWithPrefix(own_id_, static_cast<int>(i), random));
  }
  return out;
}

size_t RoutingTable::size() const {
  size_t n = 0;
  for (const Bucket& b : buckets_) n += b.nodes.size();
  return n;
}

size_t RoutingTable::replacement_size() const {
  size_t n = 0;
  for (const Bucket& b : buckets_) n += b.replacements.size();
  return n;
}

std::string RoutingTable::Save() const {
  std::vector<NodeInfo> nodes;
  for (const Bucket& b : buckets_) {
    for (const RoutingEntry& e : b.nodes) nodes.push_back(e.info);
    for (const RoutingEntry& e : b.replacements) nodes.push_back(e.info);
  }
  codec::bencode::Dict d;
  d["id"] = std::string(own_id_.bytes());
  d["nodes"] = EncodeCompactNodes(nodes, false);
  d["nodes6"] = EncodeCompactNodes(nodes, true);
  return codec::bencode::Encode(codec::bencode::Value(std::move(d)));
}

absl::StatusOr<std::vector<NodeInfo>> RoutingTable::ParseSaved(
    std::string_view bytes) {
  codec::BdecodeOptions limits;
  limits.max_depth = 2;
  limits.max_tokens = 16;
  limits.max_string_length = 1 << 20;
  SHOAL_ASSIGN_OR_RETURN(codec::BDocument doc, codec::Bdecode(bytes, limits));
  std::optional<std::string_view> v4 = doc.root().FindString("nodes");
  std::optional<std::string_view> v6 = doc.root().FindString("nodes6");
  if (!v4 || !v6) {
    return absl::InvalidArgumentError("routing table: missing nodes");
  }
  SHOAL_ASSIGN_OR_RETURN(std::vector<NodeInfo> out,
                         DecodeCompactNodes(*v4, false));
  SHOAL_ASSIGN_OR_RETURN(std::vector<NodeInfo> out6,
                         DecodeCompactNodes(*v6, true));
  out.insert(out.end(), out6.begin(), out6.end());
  return out;
}

}  // namespace shoal::dht
