#include "dht/krpc.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "codec/bdecode.h"
#include "codec/bencode.h"

namespace shoal::dht {

namespace bencode = codec::bencode;

KrpcMessage KrpcMessage::Query(KrpcMethod method, std::string transaction_id,
                               const NodeId& id) {
  KrpcMessage m;
  m.type = KrpcType::kQuery;
  m.method = method;
  m.transaction_id = std::move(transaction_id);
  m.id = id;
  return m;
}

KrpcMessage KrpcMessage::Response(std::string transaction_id,
                                  const NodeId& id) {
  KrpcMessage m;
  m.type = KrpcType::kResponse;
  m.transaction_id = std::move(transaction_id);
  m.id = id;
  return m;
}

KrpcMessage KrpcMessage::Error(std::string transaction_id, int code,
                               std::string message) {
  KrpcMessage m;
  m.type = KrpcType::kError;
  m.transaction_id = std::move(transaction_id);
  m.error_code = code;
  m.error_message = std::move(message);
  return m;
}

std::string_view KrpcMethodName(KrpcMethod method) {
  switch (method) {
    case KrpcMethod::kPing:
      return "ping";
    case KrpcMethod::kFindNode:
      return "find_node";
    case KrpcMethod::kGetPeers:
      return "get_peers";
    case KrpcMethod::kAnnouncePeer:
      return "announce_peer";
    case KrpcMethod::kPreheat:
      return "sh_preheat";
    case KrpcMethod::kUnknown:
      break;
  }
  return "";
}

std::string EncodeCompactNodes(const std::vector<NodeInfo>& nodes, bool v6) {
  std::string out;
  for (const NodeInfo& n : nodes) {
    if (v6 ? !n.endpoint.is_v6() : !n.endpoint.is_v4()) continue;
    out += n.id.bytes();
    out += n.endpoint.Compact();
  }
  return out;
}

absl::StatusOr<std::vector<NodeInfo>> DecodeCompactNodes(std::string_view bytes,
                                                         bool v6) {
  const size_t size = v6 ? 38 : 26;
  if (bytes.size() % size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("krpc: compact node list of ", bytes.size(), " bytes"));
  }
  std::vector<NodeInfo> out;
  out.reserve(bytes.size() / size);
  for (size_t i = 0; i < bytes.size(); i += size) {
    NodeInfo n;
    n.id = *NodeId::FromBytes(bytes.substr(i, 20));
    n.endpoint = *Endpoint::FromCompact(bytes.substr(i + 20, size - 20));
    out.push_back(std::move(n));
  }
  return out;
}

std::string EncodeKrpc(const KrpcMessage& m) {
  bencode::Dict top;
  top["t"] = m.transaction_id;
  if (m.cluster) top["cn"] = *m.cluster;
  if (m.timestamp) top["ct"] = *m.timestamp;
  if (m.mac) top["cm"] = *m.mac;
  if (m.ip) top["ip"] = m.ip->Compact();
  switch (m.type) {
    case KrpcType::kQuery: {
      top["y"] = "q";
      top["q"] = std::string(m.method_name.empty() ? KrpcMethodName(m.method)
                                                   : m.method_name);
      bencode::Dict a;
      a["id"] = std::string(m.id.bytes());
      if (m.want_v4 || m.want_v6) {
        bencode::List want;
        if (m.want_v4) want.push_back("n4");
        if (m.want_v6) want.push_back("n6");
        a["want"] = std::move(want);
      }
      switch (m.method) {
        case KrpcMethod::kFindNode:
          a["target"] = std::string(m.target.bytes());
          break;
        case KrpcMethod::kGetPeers:
          a["info_hash"] = std::string(m.info_hash.bytes());
          break;
        case KrpcMethod::kAnnouncePeer:
          a["info_hash"] = std::string(m.info_hash.bytes());
          a["port"] = int64_t{m.port};
          a["token"] = m.token;
          if (m.implied_port) a["implied_port"] = int64_t{1};
          break;
        case KrpcMethod::kPreheat:
          a["content"] = m.content;
          break;
        default:
          break;
      }
      top["a"] = std::move(a);
      break;
    }
    case KrpcType::kResponse: {
      top["y"] = "r";
      bencode::Dict r;
      r["id"] = std::string(m.id.bytes());
      if (!m.nodes.empty()) r["nodes"] = EncodeCompactNodes(m.nodes, false);
      if (!m.nodes6.empty()) r["nodes6"] = EncodeCompactNodes(m.nodes6, true);
      if (!m.token.empty()) r["token"] = m.token;
      if (!m.state.empty()) {
        r["st"] = m.state;
        r["dn"] = m.done;
        r["tt"] = m.total;
      }
      if (!m.values.empty()) {
        bencode::List values;
        for (const Endpoint& e : m.values) values.push_back(e.Compact());
        r["values"] = std::move(values);
      }
      top["r"] = std::move(r);
      break;
    }
    case KrpcType::kError: {
      top["y"] = "e";
      bencode::List e;
      e.emplace_back(int64_t{m.error_code});
      e.emplace_back(m.error_message);
      top["e"] = std::move(e);
      break;
    }
  }
  return bencode::Encode(bencode::Value(std::move(top)));
}

namespace {

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("krpc: ", std::string(what)));
}

absl::StatusOr<NodeId> RequireId(const codec::BNode& dict,
                                 std::string_view key) {
  std::optional<std::string_view> s = dict.FindString(key);
  if (!s) return Invalid(absl::StrCat("missing ", std::string(key)));
  std::optional<NodeId> id = NodeId::FromBytes(*s);
  if (!id) return Invalid(absl::StrCat(std::string(key), " is not 20 bytes"));
  return *id;
}

}  // namespace

absl::StatusOr<KrpcMessage> DecodeKrpc(std::string_view datagram) {
  codec::BdecodeOptions limits;
  limits.max_depth = 4;
  limits.max_tokens = 512;
  limits.max_string_length = 2048;
  SHOAL_ASSIGN_OR_RETURN(codec::BDocument doc,
                         codec::Bdecode(datagram, limits));
  codec::BNode root = doc.root();
  if (!root.is_dict()) return Invalid("message is not a dictionary");

  KrpcMessage m;
  std::optional<std::string_view> t = root.FindString("t");
  if (!t) return Invalid("missing t");
  m.transaction_id = std::string(*t);
  std::optional<std::string_view> y = root.FindString("y");
  if (!y) return Invalid("missing y");
  if (std::optional<std::string_view> cn = root.FindString("cn")) {
    m.cluster = std::string(*cn);
  }
  m.timestamp = root.FindInt("ct");
  if (std::optional<std::string_view> cm = root.FindString("cm")) {
    m.mac = std::string(*cm);
  }
  if (std::optional<std::string_view> ip = root.FindString("ip")) {
    m.ip = Endpoint::FromCompact(*ip);  // a malformed ip is ignored
  }

  if (*y == "q") {
    m.type = KrpcType::kQuery;
    std::optional<std::string_view> q = root.FindString("q");
    if (!q) return Invalid("missing q");
    m.method_name = std::string(*q);
    codec::BNode a = root.FindDict("a");
    if (!a) return Invalid("missing a");
    SHOAL_ASSIGN_OR_RETURN(m.id, RequireId(a, "id"));
    if (codec::BNode want = a.FindList("want")) {
      for (codec::BNode w : want.children()) {
        if (w.string_value() == "n4") m.want_v4 = true;
        if (w.string_value() == "n6") m.want_v6 = true;
      }
    }
    if (*q == "ping") {
      m.method = KrpcMethod::kPing;
    } else if (*q == "find_node") {
      m.method = KrpcMethod::kFindNode;
      SHOAL_ASSIGN_OR_RETURN(m.target, RequireId(a, "target"));
    } else if (*q == "get_peers") {
      m.method = KrpcMethod::kGetPeers;
      SHOAL_ASSIGN_OR_RETURN(m.info_hash, RequireId(a, "info_hash"));
    } else if (*q == "announce_peer") {
      m.method = KrpcMethod::kAnnouncePeer;
      SHOAL_ASSIGN_OR_RETURN(m.info_hash, RequireId(a, "info_hash"));
      std::optional<int64_t> port = a.FindInt("port");
      std::optional<int64_t> implied = a.FindInt("implied_port");
      m.implied_port = implied && *implied != 0;
      if (!m.implied_port && (!port || *port <= 0 || *port > 65535)) {
        return Invalid("missing or bad port");
      }
      if (port && *port >= 0 && *port <= 65535) {
        m.port = static_cast<uint16_t>(*port);
      }
      std::optional<std::string_view> token = a.FindString("token");
      if (!token) return Invalid("missing token");
      m.token = std::string(*token);
    } else if (*q == "sh_preheat") {
      m.method = KrpcMethod::kPreheat;
      std::optional<std::string_view> content = a.FindString("content");
      if (!content || content->size() != 32)
        return Invalid("missing or bad content");
      m.content = std::string(*content);
    } else {
      m.method = KrpcMethod::kUnknown;
    }
    return m;
  }
  if (*y == "r") {
    m.type = KrpcType::kResponse;
    codec::BNode r = root.FindDict("r");
    if (!r) return Invalid("missing r");
    SHOAL_ASSIGN_OR_RETURN(m.id, RequireId(r, "id"));
    if (std::optional<std::string_view> nodes = r.FindString("nodes")) {
      SHOAL_ASSIGN_OR_RETURN(m.nodes, DecodeCompactNodes(*nodes, false));
    }
    if (std::optional<std::string_view> nodes6 = r.FindString("nodes6")) {
      SHOAL_ASSIGN_OR_RETURN(m.nodes6, DecodeCompactNodes(*nodes6, true));
    }
    if (std::optional<std::string_view> token = r.FindString("token")) {
      m.token = std::string(*token);
    }
    if (std::optional<std::string_view> st = r.FindString("st")) {
      m.state = std::string(st->substr(0, 32));
      m.done = r.FindInt("dn").value_or(0);
      m.total = r.FindInt("tt").value_or(0);
    }
    if (codec::BNode values = r.FindList("values")) {
      for (codec::BNode v : values.children()) {
        std::optional<Endpoint> e;
        if (v.is_string()) e = Endpoint::FromCompact(v.string_value());
        if (!e) return Invalid("bad peer in values");
        m.values.push_back(std::move(*e));
      }
    }
    return m;
  }
  if (*y == "e") {
    m.type = KrpcType::kError;
    codec::BNode e = root.FindList("e");
    if (!e) return Invalid("missing e");
    std::vector<codec::BNode> items = e.list_items();
    if (items.size() < 2 || !items[0].is_int() || !items[1].is_string()) {
      return Invalid("e is not [code, message]");
    }
    m.error_code = static_cast<int>(items[0].int_value());
    m.error_message = std::string(items[1].string_value());
    return m;
  }
  return Invalid("unknown y");
}

}  // namespace shoal::dht
