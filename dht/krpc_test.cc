#include "dht/krpc.h"

#include "gtest/gtest.h"

namespace shoal::dht {
namespace {

NodeId Id(std::string_view s) { return *NodeId::FromBytes(s); }

// The BEP 5 ping query and response decode and re-encode byte for byte.
TEST(KrpcTest, PingVectors) {
  std::string q = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
  absl::StatusOr<KrpcMessage> m = DecodeKrpc(q);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->type, KrpcType::kQuery);
  EXPECT_EQ(m->method, KrpcMethod::kPing);
  EXPECT_EQ(m->transaction_id, "aa");
  EXPECT_EQ(m->id, Id("abcdefghij0123456789"));
  EXPECT_FALSE(m->cluster.has_value());
  EXPECT_EQ(EncodeKrpc(*m), q);

  std::string r = "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re";
  m = DecodeKrpc(r);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, KrpcType::kResponse);
  EXPECT_EQ(EncodeKrpc(*m), r);
}

// find_node, get_peers and announce_peer queries from BEP 5 round-trip.
TEST(KrpcTest, QueryVectors) {
  for (std::string q : {
           std::string("d1:ad2:id20:abcdefghij01234567896:target20:"
                       "mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe"),
           std::string("d1:ad2:id20:abcdefghij01234567899:info_hash20:"
                       "mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe"),
           std::string("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:"
                       "info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:"
                       "aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe"),
       }) {
    absl::StatusOr<KrpcMessage> m = DecodeKrpc(q);
    ASSERT_TRUE(m.ok()) << q << ": " << m.status();
    EXPECT_EQ(EncodeKrpc(*m), q);
  }
  absl::StatusOr<KrpcMessage> a = DecodeKrpc(
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:"
      "mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:"
      "t2:aa1:y1:qe");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->method, KrpcMethod::kAnnouncePeer);
  EXPECT_TRUE(a->implied_port);
  EXPECT_EQ(a->port, 6881);
  EXPECT_EQ(a->token, "aoeusnth");
  EXPECT_EQ(a->info_hash, Id("mnopqrstuvwxyz123456"));
}

// The BEP 5 get_peers response with values decodes to two compact peers.
TEST(KrpcTest, GetPeersValuesVector) {
  std::string r =
      "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:"
      "idhtnmee1:t2:aa1:y1:re";
  absl::StatusOr<KrpcMessage> m = DecodeKrpc(r);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->values.size(), 2u);
  EXPECT_EQ(m->values[0].Compact(), "axje.u");
  EXPECT_EQ(m->token, "aoeusnth");
  EXPECT_EQ(EncodeKrpc(*m), r);
}

// The BEP 5 error example decodes to code 201 and its message.
TEST(KrpcTest, ErrorVector) {
  std::string e = "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
  absl::StatusOr<KrpcMessage> m = DecodeKrpc(e);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, KrpcType::kError);
  EXPECT_EQ(m->error_code, 201);
  EXPECT_EQ(m->error_message, "A Generic Error Ocurred");
  EXPECT_EQ(EncodeKrpc(*m), e);
}

// Compact node lists (IPv4 and IPv6), cn and ip survive a round trip.
TEST(KrpcTest, NodesClusterAndIpRoundTrip) {
  KrpcMessage m = KrpcMessage::Response("xy", Id("0123456789abcdefghij"));
  m.cluster = "shoal";
  m.ip = Endpoint::V4(0x7f000001, 1234);
  m.nodes.push_back({Id("AAAAAAAAAAAAAAAAAAAA"), Endpoint::V4(0x01020304, 80)});
  Endpoint v6;
  v6.address = std::string(16, '\x20');
  v6.port = 443;
  m.nodes6.push_back({Id("BBBBBBBBBBBBBBBBBBBB"), v6});
  std::string bytes = EncodeKrpc(m);
  absl::StatusOr<KrpcMessage> back = DecodeKrpc(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->cluster, "shoal");
  EXPECT_EQ(back->ip, m.ip);
  EXPECT_EQ(back->nodes, m.nodes);
  EXPECT_EQ(back->nodes6, m.nodes6);
}

// BEP 32 want ["n4", "n6"] round-trips.
TEST(KrpcTest, WantRoundTrip) {
  KrpcMessage q = KrpcMessage::Query(KrpcMethod::kFindNode, "aa",
                                     Id("abcdefghij0123456789"));
  q.target = Id("mnopqrstuvwxyz123456");
  q.want_v6 = true;
  absl::StatusOr<KrpcMessage> m = DecodeKrpc(EncodeKrpc(q));
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->want_v4);
  EXPECT_TRUE(m->want_v6);
}

// Random mutations of valid messages decode or fail cleanly, never crash.
TEST(KrpcTest, MutatedInputNeverCrashes) {
  std::vector<std::string> seeds = {
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:"
      "mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:"
      "t2:aa1:y1:qe",
      "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:"
      "idhtnmee1:t2:aa1:y1:re",
      "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
  };
  uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int ok = 0;
  for (int i = 0; i < 30000; ++i) {
    std::string s = seeds[next() % seeds.size()];
    int edits = 1 + next() % 4;
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = next() % s.size();
      switch (next() % 3) {
        case 0:
          s[pos] = static_cast<char>(next());
          break;
        case 1:
          s.erase(pos, 1 + next() % 8);
          break;
        case 2:
          s.insert(pos, 1, "0123456789:deil"[next() % 15]);
          break;
      }
    }
    absl::StatusOr<KrpcMessage> m = DecodeKrpc(s);
    if (m.ok()) {
      ++ok;
      // Whatever decodes re-encodes and decodes again.
      EXPECT_TRUE(DecodeKrpc(EncodeKrpc(*m)).ok());
    } else {
      EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_GT(ok, 0);
}

// Malformed datagrams are INVALID_ARGUMENT, never a crash.
TEST(KrpcTest, MalformedInput) {
  for (std::string bad : {
           std::string(""), std::string("i42e"),
           std::string("d1:t2:aae"),                               // no y
           std::string("d1:y1:qe"),                                // no t
           std::string("d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"),  // short id
           std::string("d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:"
                       "aa1:y1:qe"),  // no target
           std::string("d1:rd2:id20:abcdefghij01234567895:nodes5:abcdee1:t2:"
                       "aa1:y1:re"),  // nodes % 26
           std::string("d1:rd2:id20:abcdefghij01234567896:valuesl3:abcee1:t2:"
                       "aa1:y1:re"),                  // bad value
           std::string("d1:eli201ee1:t2:aa1:y1:ee"),  // e too short
           std::string("d1:t2:aa1:y1:ze"),            // unknown y
           std::string("d1:ad2:id20:abcdefghij01234567899:info_hash20:"
                       "mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:"
                       "aa1:y1:qe"),               // no port
           std::string("d1:ad1:ad1:ad1:adeeeee"),  // too deep
           std::string("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:"
                       "q"),  // truncated
           std::string("d1:t5000:") + std::string(5000, 'x') +
               "e",  // long string
       }) {
    absl::StatusOr<KrpcMessage> m = DecodeKrpc(bad);
    ASSERT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// An unknown method decodes (so the server can answer 204).
TEST(KrpcTest, UnknownMethod) {
  absl::StatusOr<KrpcMessage> m =
      DecodeKrpc("d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->method, KrpcMethod::kUnknown);
  EXPECT_EQ(m->method_name, "vote");
}

}  // namespace
}  // namespace shoal::dht

namespace shoal::dht {
namespace {

TEST(KrpcTest, PreheatRoundTrip) {
  KrpcMessage q =
      KrpcMessage::Query(KrpcMethod::kPreheat, "t1",
                         NodeId::FromBytes(std::string(20, 'a')).value());
  q.content = std::string(32, 'x');
  auto d = DecodeKrpc(EncodeKrpc(q));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->method, KrpcMethod::kPreheat);
  EXPECT_EQ(d->content, q.content);
  q.content = "short";
  EXPECT_FALSE(DecodeKrpc(EncodeKrpc(q)).ok());
  KrpcMessage r = KrpcMessage::Response(
      "t1", NodeId::FromBytes(std::string(20, 'b')).value());
  r.state = "fetching";
  r.done = 5;
  r.total = 9;
  auto dr = DecodeKrpc(EncodeKrpc(r));
  ASSERT_TRUE(dr.ok());
  EXPECT_EQ(dr->state, "fetching");
  EXPECT_EQ(dr->done, 5);
  EXPECT_EQ(dr->total, 9);
}

}  // namespace
}  // namespace shoal::dht
