// The swarm engine driven through fakes (node/swarm_fakes.h): no sockets, no
// threads, time moves only when the test says so. Each test is deterministic.
#include "node/swarm.h"

#include <algorithm>
#include <string>
#include <variant>

#include "gtest/gtest.h"
#include "node/swarm_fakes.h"
#include "wire/extension.h"
#include "wire/message.h"
#include "wire/peer_priority.h"
#include "wire/pex.h"

namespace shoal::node::testing {
namespace {

SwarmOptions Cdn() {
  SwarmOptions o;
  o.trusted_peers = true;
  o.kind = TrafficKind::kCdn;
  return o;
}

// An origin: a trusted swarm that super-seeds what it holds.
SwarmOptions CdnOrigin() {
  SwarmOptions o = Cdn();
  o.super_seed = true;
  return o;
}

SwarmOptions Torrent(int slots) {
  SwarmOptions o;
  o.trusted_peers = false;
  o.upload_slots = slots;
  return o;
}

// The messages a scripted peer received, decoded.
std::vector<wire::Message> Decode(const std::vector<std::string>& raw) {
  std::vector<wire::Message> out;
  for (const std::string& r : raw) {
    std::string_view v(r);
    auto m = wire::ParseMessage(v);
    if (m.ok() && m->has_value()) out.push_back(**m);
  }
  return out;
}

template <typename T>
int Count(const std::vector<wire::Message>& ms) {
  return static_cast<int>(std::count_if(
      ms.begin(), ms.end(),
      [](const auto& m) { return std::holds_alternative<T>(m); }));
}

class SwarmTest : public ::testing::Test {
 protected:
  FakeEnv env_{/*seed=*/42};
  FakeNet net_{env_};
};

// A fetcher that knows only the info-hash gets the metadata (ut_metadata,
// BEP 9), the piece layer (hash requests, BEP 52) and every piece, verified.
TEST_F(SwarmTest, FetchesMetadataLayersAndPieces) {
  const TestContent c = TestContent::Make(5 << 20, 1);
  ASSERT_GT(c.layout.num_pieces(), 1u);
  TestSwarm seed(env_, c, Cdn());
  TestSwarm fetcher(env_, c, Cdn());
  seed.StartSeeding();
  EXPECT_TRUE(seed.complete());
  EXPECT_FALSE(fetcher.has_metadata());
  net_.Connect(fetcher, seed);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  EXPECT_TRUE(fetcher.completed());
  EXPECT_EQ(fetcher.metainfo()->info_bytes, c.metainfo->info_bytes);
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_EQ(fetcher.downloaded(), c.data.size());
  EXPECT_EQ(seed.uploaded(), c.data.size());
  // No time had to pass: nothing waited for a timeout.
  EXPECT_LT(env_.seconds(), 3u);
}

// Fetchers trade: the second gets pieces from the first too.
TEST_F(SwarmTest, FetchersTradeWithEachOther) {
  const TestContent c = TestContent::Make(8 << 20, 2);
  TestSwarm seed(env_, c, Cdn());
  TestSwarm a(env_, c, Cdn());
  TestSwarm b(env_, c, Cdn());
  seed.StartSeeding();
  net_.Connect(a, seed);
  net_.Connect(b, seed);
  net_.Connect(a, b);
  ASSERT_TRUE(net_.RunUntil([&] { return a.complete() && b.complete(); }, 60));
  EXPECT_EQ(a.Bytes(), c.data);
  EXPECT_EQ(b.Bytes(), c.data);
  EXPECT_GT(a.uploaded() + b.uploaded(), 0u);
}

// A seed whose data is corrupt: the fetcher checks the piece, finds the one
// sender, and bans it (its address, not just the connection).
TEST_F(SwarmTest, CorruptPieceGetsItsSenderBanned) {
  const TestContent c = TestContent::Make(4 << 20, 3);
  TestSwarm liar(env_, c, Cdn());
  TestSwarm fetcher(env_, c, Cdn());
  liar.StartSeeding();
  for (uint32_t i = 0; i < c.layout.num_pieces(); ++i)
    liar.memory()->CorruptOnRead(i);
  net_.Connect(fetcher, liar);
  net_.RunUntil([&] { return fetcher.IsBanned(net_.AddressOf(liar)); }, 30);
  EXPECT_TRUE(fetcher.IsBanned(net_.AddressOf(liar)));
  EXPECT_EQ(fetcher.num_peers(), 0u);
  EXPECT_FALSE(fetcher.complete());
  EXPECT_TRUE(fetcher.memory()->pieces().empty());  // nothing bad stored

  // An honest seed afterwards: the fetcher completes from it.
  TestSwarm honest(env_, c, Cdn());
  honest.StartSeeding();
  net_.Connect(fetcher, honest);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  EXPECT_EQ(fetcher.Bytes(), c.data);
}

// One bad block among good ones from two senders: v2 block hashes show which
// sender sent it, and only that one is banned.
TEST_F(SwarmTest, BlameFindsTheSenderOfTheBadBlock) {
  const TestContent c = TestContent::Make(4 << 20, 4);
  TestSwarm good(env_, c, Cdn());
  TestSwarm liar(env_, c, Cdn());
  TestSwarm fetcher(env_, c, Cdn());
  good.StartSeeding();
  liar.StartSeeding();
  for (uint32_t i = 0; i < c.layout.num_pieces(); ++i)
    liar.memory()->CorruptOnRead(i);
  net_.Connect(fetcher, good);
  net_.Connect(fetcher, liar);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 60));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_TRUE(fetcher.IsBanned(net_.AddressOf(liar)));
  EXPECT_FALSE(fetcher.IsBanned(net_.AddressOf(good)));
}

// A peer that says it has everything, unchokes us and then never answers a
// request: snubbed after snub_seconds (its requests go elsewhere), dropped
// when silent for two minutes.
TEST_F(SwarmTest, PeerThatStopsAnsweringIsSnubbedThenDropped) {
  const TestContent c = TestContent::Make(2 << 20, 5);
  TestSwarm fetcher(env_, c, Cdn());
  // The fetcher needs the metadata first: from a seed that then leaves.
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();
  fetcher.StartEmpty();
  auto mute = net_.ConnectScripted(fetcher);
  mute->Send(wire::HaveAll{});
  mute->Send(wire::Unchoke{});
  net_.Pump();
  EXPECT_EQ(fetcher.num_peers(), 1u);
  // Without metadata nothing is requested from it; give the fetcher the
  // metadata through the seed, and take the seed's data away.
  net_.Connect(fetcher, seed);
  net_.RunUntil([&] { return fetcher.ready(); }, 10);
  ASSERT_TRUE(fetcher.ready());
  seed.Shutdown();
  net_.Pump();
  // The mute peer now holds requests.
  auto requests = Count<wire::Request>(Decode(mute->received()));
  EXPECT_GT(requests, 0);
  auto info = fetcher.Peers();
  ASSERT_EQ(info.size(), 1u);
  EXPECT_FALSE(info[0].snubbed);
  net_.RunUntil([] { return false; }, 21);
  info = fetcher.Peers();
  ASSERT_EQ(info.size(), 1u);
  EXPECT_TRUE(info[0].snubbed);
  // Its requests went back to the picker; a snubbed peer keeps one.
  EXPECT_LE(info[0].requests_out, 1u);
  // Silence: dropped after 120 s without a byte from it.
  net_.RunUntil([&] { return mute->closed(); }, 130);
  EXPECT_TRUE(mute->closed());
  EXPECT_EQ(fetcher.num_peers(), 0u);
}

// Messages that break the protocol end the connection: a request for a piece
// out of range, a bitfield of the wrong size.
TEST_F(SwarmTest, ProtocolViolationsCloseTheConnection) {
  const TestContent c = TestContent::Make(2 << 20, 6);
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();

  auto bad_bitfield = net_.ConnectScripted(seed);
  bad_bitfield->Send(wire::Bitfield{std::string(1000, '\xff')});
  net_.Pump();
  EXPECT_TRUE(bad_bitfield->closed());

  auto bad_request = net_.ConnectScripted(seed);
  bad_request->Send(wire::Interested{});
  bad_request->Send(wire::Request{{c.layout.num_pieces() + 5, 0, 16384}});
  net_.Pump();
  EXPECT_TRUE(bad_request->closed());

  // A well-behaved peer on the same swarm is served meanwhile.
  auto polite = net_.ConnectScripted(seed);
  polite->Send(wire::Interested{});
  net_.Pump();
  polite->Send(wire::Request{{0, 0, 16384}});
  net_.Pump();
  EXPECT_FALSE(polite->closed());
  EXPECT_EQ(Count<wire::Piece>(Decode(polite->received())), 1);
}

// The hello: a seed answers a fast peer with have-all, an extension
// handshake naming ut_metadata and its metadata size, and (CDN) unchokes an
// interested peer at once.
TEST_F(SwarmTest, HelloAndCdnUnchoke) {
  const TestContent c = TestContent::Make(1 << 20, 7);
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();
  auto peer = net_.ConnectScripted(seed);
  net_.Pump();
  auto got = Decode(peer->received());
  EXPECT_EQ(Count<wire::HaveAll>(got), 1);
  ASSERT_GE(Count<wire::Extended>(got), 1);
  const auto& ext = std::get<wire::Extended>(
      *std::find_if(got.begin(), got.end(), [](const wire::Message& m) {
        return std::holds_alternative<wire::Extended>(m);
      }));
  auto hs = wire::ParseExtensionHandshake(ext.payload);
  ASSERT_TRUE(hs.ok());
  EXPECT_NE(hs->IdOf("ut_metadata"), 0);
  EXPECT_EQ(hs->metadata_size.value_or(0),
            static_cast<int64_t>(c.metainfo->info_bytes.size()));
  EXPECT_EQ(Count<wire::Unchoke>(got), 0);
  peer->Send(wire::Interested{});
  net_.Pump();
  EXPECT_EQ(Count<wire::Unchoke>(Decode(peer->received())), 1);
}

// A cluster node whose uplink is backlogged (more than
// upload_backlog_bytes wait on its links) rejects requests, and serves them
// again once the backlog drains.
TEST_F(SwarmTest, BackloggedUplinkRejectsRequests) {
  const TestContent c = TestContent::Make(1 << 20, 8);
  SwarmOptions o = Cdn();
  o.upload_backlog_bytes = 1 << 20;
  TestSwarm node(env_, c, o);
  node.StartSeeding();
  auto busy = net_.ConnectScripted(node);  // the link whose bytes wait
  auto peer = net_.ConnectScripted(node);
  peer->Send(wire::Interested{});
  net_.Pump();
  const wire::Request request{{0, 0, 16384}};
  busy->other()->set_queued_bytes(2 << 20);
  peer->received().clear();
  peer->Send(request);
  net_.Pump();
  auto got = Decode(peer->received());
  EXPECT_EQ(Count<wire::Reject>(got), 1);
  EXPECT_EQ(Count<wire::Piece>(got), 0);

  busy->other()->set_queued_bytes(0);
  peer->received().clear();
  peer->Send(request);
  net_.Pump();
  got = Decode(peer->received());
  EXPECT_EQ(Count<wire::Reject>(got), 0);
  EXPECT_EQ(Count<wire::Piece>(got), 1);
}

// Fetches that share the node's download budget each complete, and together
// never hold or ask for more than it allows, but for the piece each may take
// while it holds nothing.
TEST_F(SwarmTest, DownloadBudgetBoundsEveryFetchTogether) {
  auto budget = std::make_shared<DownloadBudget>(256 << 10);
  SwarmOptions o = Cdn();
  o.download_budget = budget;
  std::vector<TestContent> contents;
  for (uint64_t i = 0; i < 3; ++i)
    contents.push_back(TestContent::Make(2 << 20, 20 + i));
  std::vector<std::unique_ptr<TestSwarm>> seeds, fetchers;
  for (const TestContent& c : contents) {
    seeds.push_back(std::make_unique<TestSwarm>(env_, c, Cdn()));
    seeds.back()->StartSeeding();
    fetchers.push_back(std::make_unique<TestSwarm>(env_, c, o));
    net_.Connect(*fetchers.back(), *seeds.back());
  }
  size_t peak = 0;
  ASSERT_TRUE(net_.RunUntil(
      [&] {
        peak = std::max(peak, budget->used());
        return std::all_of(fetchers.begin(), fetchers.end(),
                           [](const auto& f) { return f->complete(); });
      },
      60));
  const size_t piece = contents[0].layout.piece_length;
  EXPECT_GT(peak, 0u);
  EXPECT_LE(peak, budget->limit() + 3 * piece);
  for (size_t i = 0; i < contents.size(); ++i)
    EXPECT_EQ(fetchers[i]->Bytes(), contents[i].data);
  fetchers.clear();
  EXPECT_EQ(budget->used(), 0u);
}

// A fetcher whose requests a backlogged holder rejects gets those pieces
// from another holder, and completes.
TEST_F(SwarmTest, RejectedPiecesAreAskedOfAnotherHolder) {
  const TestContent c = TestContent::Make(4 << 20, 9);
  SwarmOptions o = Cdn();
  o.upload_backlog_bytes = 1 << 20;
  TestSwarm busy(env_, c, o);
  TestSwarm idle(env_, c, o);
  TestSwarm fetcher(env_, c, o);
  busy.StartSeeding();
  idle.StartSeeding();
  auto other = net_.ConnectScripted(busy);
  other->other()->set_queued_bytes(2 << 20);
  net_.Connect(fetcher, busy);
  net_.Connect(fetcher, idle);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_EQ(busy.uploaded(), 0u);
  EXPECT_EQ(idle.uploaded(), c.data.size());
}

// Torrent mode: tit-for-tat. With one regular slot, the rechoke (every 10 s)
// unchokes the peer that uploads to us fastest, plus one optimistic unchoke;
// the rest stay choked.
TEST_F(SwarmTest, ChokerUnchokesTheBestUploaderAndOneOptimistic) {
  const TestContent c = TestContent::Make(8 << 20, 8);
  TestSwarm leech(env_, c, Torrent(/*slots=*/1));
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();
  net_.Connect(leech, seed);
  net_.RunUntil([&] { return leech.ready(); }, 10);
  ASSERT_TRUE(leech.ready());
  std::vector<std::shared_ptr<FakeLink>> peers;
  for (int i = 0; i < 4; ++i) {
    peers.push_back(net_.ConnectScripted(leech));
    peers.back()->Send(wire::HaveNone{});
    peers.back()->Send(wire::Interested{});
  }
  net_.RunUntil([] { return false; }, 25);
  int unchoked = 0;
  for (const PeerInfo& p : leech.Peers())
    if (!p.am_choking && p.address != net_.AddressOf(seed).ToString())
      ++unchoked;
  // One regular slot and one optimistic unchoke among four interested peers.
  EXPECT_GE(unchoked, 1);
  EXPECT_LE(unchoked, 2);
}

// Endgame: when every block is requested, the last ones held by a peer that
// never answers are asked of another peer, so the download ends without
// waiting for the snub timeout.
TEST_F(SwarmTest, EndgameDoesNotWaitForAStalledPeer) {
  const TestContent c = TestContent::Make(4 << 20, 9);
  TestSwarm seed(env_, c, Cdn());
  TestSwarm fetcher(env_, c, Cdn());
  seed.StartSeeding();
  net_.Connect(fetcher, seed);
  net_.RunUntil([&] { return fetcher.ready(); }, 10);
  ASSERT_TRUE(fetcher.ready());
  ASSERT_FALSE(fetcher.complete());
  // A staller joins before the blocks are all in: it has everything,
  // unchokes, and takes requests it never answers.
  auto staller = net_.ConnectScripted(fetcher);
  staller->Send(wire::HaveAll{});
  staller->Send(wire::Unchoke{});
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 15));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_LT(env_.seconds(), 15u);  // well before the 20 s snub timeout
  const auto asked = Decode(staller->received());
  EXPECT_GT(Count<wire::Request>(asked), 0);  // it did hold requests
  EXPECT_GT(Count<wire::Cancel>(asked), 0);   // cancelled once served
}

// Super-seeding (an origin in a trusted swarm): the hello says "none" and
// reveals a few pieces; more come as those are sent; a fetcher alone still
// gets everything from it, and the origin sends each piece once.
TEST_F(SwarmTest, OriginRevealsPiecesAFewAtATime) {
  const TestContent c = TestContent::Make(4 << 20, 10);
  TestSwarm origin(env_, c, CdnOrigin());
  origin.StartSeeding();
  auto peer = net_.ConnectScripted(origin);
  net_.Pump();
  auto hello = Decode(peer->received());
  EXPECT_EQ(Count<wire::HaveAll>(hello), 0);
  EXPECT_EQ(Count<wire::HaveNone>(hello), 1);
  const int revealed = Count<wire::Have>(hello);
  EXPECT_GE(revealed, 1);
  EXPECT_LT(revealed, static_cast<int>(c.layout.num_pieces()) / 4);
  peer->Send(wire::Interested{});
  net_.Pump();
  // Take one revealed piece whole: two more are revealed (a lone new peer's
  // window grows by each piece it takes: slow start, node/super_seeder.h).
  uint32_t piece = 0;
  for (const auto& m : hello)
    if (auto* h = std::get_if<wire::Have>(&m)) piece = h->piece;
  for (uint32_t off = 0; off < c.layout.piece_size(piece); off += 16384)
    peer->Send(wire::Request{{piece, off, 16384}});
  net_.Pump();
  EXPECT_EQ(Count<wire::Have>(Decode(peer->received())), revealed + 2);

  TestSwarm fetcher(env_, c, Cdn());
  net_.Connect(fetcher, origin);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 60));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_LE(origin.uploaded(),
            c.data.size() + c.layout.piece_size(piece));  // each piece once
}

// An origin with a single fetcher reveals its pieces in index order, so that a
// reader streaming on the fetcher (its range's deadlines) gets the first piece
// first and the rest in order, not when the random order gets to them.
TEST_F(SwarmTest, LoneFetcherOfAnOriginGetsThePiecesInOrder) {
  const TestContent c = TestContent::Make(4 << 20, 11);
  TestSwarm origin(env_, c, CdnOrigin());
  origin.StartSeeding();
  TestSwarm fetcher(env_, c, Cdn());
  fetcher.WantRange(0, c.data.size());
  net_.Connect(fetcher, origin);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 60));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  const std::vector<uint32_t>& order = fetcher.have_order();
  ASSERT_EQ(order.size(), c.layout.num_pieces());
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

// Two nodes that dial each other at the same moment each see their own
// connection first: both keep the one opened by the greater peer ID, so one
// connection survives (keeping the first one seen closed both).
TEST_F(SwarmTest, CrossedConnectionsKeepTheSameOne) {
  const TestContent c = TestContent::Make(1 << 20, 12);
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();
  TestSwarm fetcher(env_, c, Cdn());
  net_.ConnectCrossed(fetcher, seed);
  EXPECT_EQ(seed.num_peers(), 1u);
  EXPECT_EQ(fetcher.num_peers(), 1u);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 60));
  EXPECT_EQ(fetcher.Bytes(), c.data);
}

// BEP 40: a torrent swarm with every slot taken lets a peer of higher
// canonical priority in, in place of the lowest, and turns a lower one away.
TEST_F(SwarmTest, FullSwarmKeepsThePeersOfHighestCanonicalPriority) {
  const TestContent c = TestContent::Make(256 << 10, 13);
  SwarmOptions o = Torrent(4);
  o.max_peers = 1;
  TestSwarm fetcher(env_, c, o);
  fetcher.StartEmpty();
  std::vector<std::unique_ptr<TestSwarm>> seeds;  // other peers
  // Peers that have nothing either: the connections stay (two seeds, or a
  // fetcher done, would close theirs).
  for (int i = 0; i < 3; ++i) {
    seeds.push_back(std::make_unique<TestSwarm>(env_, c, Torrent(4)));
    seeds.back()->StartEmpty();
  }
  // The fetcher as its peers see it (their yourip), with its listen port.
  const PeerEndpoint me = net_.AddressOf(fetcher);
  auto priority = [&](const TestSwarm& s) {
    return wire::CanonicalPeerPriority(me, net_.AddressOf(s));
  };
  net_.Connect(fetcher, *seeds[0]);
  net_.Pump();
  ASSERT_EQ(fetcher.num_peers(), 1u);
  // The others dial it, each turned away or taking the slot (with these
  // addresses the second is turned away and the third takes the slot).
  const TestSwarm* best = seeds[0].get();
  for (int i = 1; i < 3; ++i) {
    net_.Connect(*seeds[i], fetcher);
    net_.Pump();
    if (priority(*seeds[i]) > priority(*best)) best = seeds[i].get();
    ASSERT_EQ(fetcher.num_peers(), 1u);
    EXPECT_EQ(fetcher.Peers().at(0).address, net_.AddressOf(*best).ToString());
  }
}

// BEP 21: a seed says upload_only in its extension handshake, a fetcher says
// so with an upload_only message when it completes, a seed closes a peer
// that wants nothing, and a seed does not dial the seeds PEX names.
TEST_F(SwarmTest, UploadOnlySaidAndHonoured) {
  const TestContent c = TestContent::Make(1 << 20, 11);
  TestSwarm seed(env_, c, Cdn());
  seed.StartSeeding();
  auto ExtOf = [](const std::vector<wire::Message>& ms) {
    for (const auto& m : ms)
      if (auto* e = std::get_if<wire::Extended>(&m); e && e->id == 0)
        return wire::ParseExtensionHandshake(e->payload);
    return absl::StatusOr<wire::ExtensionHandshake>(
        absl::NotFoundError("no extension handshake"));
  };
  auto peer = net_.ConnectScripted(seed);
  net_.Pump();
  auto hs = ExtOf(Decode(peer->received()));
  ASSERT_TRUE(hs.ok()) << hs.status();
  EXPECT_TRUE(hs->upload_only);
  EXPECT_NE(hs->IdOf("upload_only"), 0);

  // A peer that says it wants nothing is closed: nothing to trade.
  auto partial = net_.ConnectScripted(seed);
  wire::ExtensionHandshake mine;
  mine.upload_only = true;
  partial->Send(wire::Extended{0, wire::EncodeExtensionHandshake(mine)});
  net_.Pump();
  EXPECT_TRUE(partial->closed());
  EXPECT_FALSE(peer->closed());

  // PEX names two peers, one a seed: the seed dials only the other.
  std::vector<PeerEndpoint> dialed;
  seed.set_connector([&](const PeerEndpoint& e) { dialed.push_back(e); });
  wire::PexMessage pex;
  pex.added.push_back({"10.9.0.1", 7001, wire::kPexSeed});
  pex.added.push_back({"10.9.0.2", 7002, 0});
  peer->Send(wire::Extended{hs->IdOf("ut_pex"), wire::EncodePex(pex)});
  net_.Pump();
  ASSERT_EQ(dialed.size(), 1u);
  EXPECT_EQ(dialed[0].ToString(), "10.9.0.2:7002");

  // A fetcher tells a peer that speaks the message once it completes.
  TestSwarm fetcher(env_, c, Cdn());
  auto watcher = net_.ConnectScripted(fetcher);
  wire::ExtensionHandshake theirs;
  theirs.m["upload_only"] = 9;
  watcher->Send(wire::Extended{0, wire::EncodeExtensionHandshake(theirs)});
  net_.Pump();
  auto first = ExtOf(Decode(watcher->received()));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->upload_only);
  net_.Connect(fetcher, seed);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  net_.Pump();
  int said = 0;
  for (const auto& m : Decode(watcher->received()))
    if (auto* e = std::get_if<wire::Extended>(&m); e && e->id == 9)
      said += e->payload == std::string(1, '\1');
  EXPECT_EQ(said, 1);
  // The fetcher, now a seed, and the seed closed their connection.
  EXPECT_EQ(seed.num_peers(), 1u);  // `peer` only
}

// Interest follows what a peer has that we lack: once the pieces a partial
// peer offered are ours (from anyone), it is told we are not interested, so
// that it does not keep an upload slot for us.
TEST_F(SwarmTest, InterestEndsWhenAPeerHasNothingMoreForUs) {
  const TestContent c = TestContent::Make(8 << 20, 12);
  TestSwarm seed(env_, c, Cdn());
  TestSwarm fetcher(env_, c, Cdn());
  seed.StartSeeding();
  fetcher.SetStrategy(chunk::PickStrategy::kSequential);
  net_.Connect(fetcher, seed);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.ready(); }, 10));
  const uint32_t n = c.metainfo->num_pieces;
  ASSERT_GT(n, 4u);
  auto partial = net_.ConnectScripted(fetcher);
  chunk::Bitfield has(n);
  has.set(0);
  has.set(1);
  partial->Send(wire::Bitfield{has.bytes()});
  net_.Pump();
  EXPECT_EQ(Count<wire::Interested>(Decode(partial->received())), 1);
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  net_.Pump();
  // Told as soon as pieces 0 and 1 were in (sequential: the first two), not
  // at the end when the fetcher completes.
  const std::vector<wire::Message> got = Decode(partial->received());
  int not_interested_at = -1;
  std::vector<uint32_t> haves_before;
  for (size_t i = 0; i < got.size() && not_interested_at < 0; ++i) {
    if (std::holds_alternative<wire::NotInterested>(got[i]))
      not_interested_at = static_cast<int>(i);
    if (auto* h = std::get_if<wire::Have>(&got[i]))
      haves_before.push_back(h->piece);
  }
  ASSERT_GE(not_interested_at, 0);
  EXPECT_EQ(haves_before, (std::vector<uint32_t>{0, 1}));
}

// A peer that went is dialed again once its wait is over: without a peer
// list it was forgotten until a tracker, the DHT or PEX named it anew.
TEST_F(SwarmTest, APeerThatWentIsDialedAgain) {
  const TestContent c = TestContent::Make(4 << 20, 21);
  TestSwarm seed(env_, c, Torrent(4));
  TestSwarm fetcher(env_, c, Torrent(4));
  seed.StartSeeding();
  const PeerEndpoint at = net_.AddressOf(seed);
  int dials = 0;
  fetcher.set_connector([&](const PeerEndpoint& to) {
    ++dials;
    EXPECT_EQ(to, at);
    net_.Connect(fetcher, seed);
  });
  fetcher.ConnectTo({at});
  EXPECT_EQ(dials, 1);
  // The seed restarts before anything moved.
  seed.Shutdown();
  seed.Reopen();
  net_.Pump();
  EXPECT_EQ(fetcher.num_peers(), 0u);
  // Named again (a tracker's next answer): it waits all the same.
  fetcher.ConnectTo({at});
  EXPECT_EQ(dials, 1);
  // Gone within 10 s of connecting counts as a failure: a minute's wait.
  EXPECT_FALSE(net_.RunUntil([&] { return dials > 1; }, 55));
  ASSERT_TRUE(net_.RunUntil([&] { return dials > 1; }, 10));
  ASSERT_TRUE(net_.RunUntil([&] { return fetcher.complete(); }, 30));
  EXPECT_EQ(fetcher.Bytes(), c.data);
  EXPECT_EQ(dials, 2);
}

// More peers than free slots: the rest wait in the peer list and are dialed
// as slots free (they used to be dropped). A peer that fails waits; one that
// keeps failing is forgotten.
TEST_F(SwarmTest, PeersBeyondTheFreeSlotsAreDialedLater) {
  const TestContent c = TestContent::Make(1 << 20, 22);
  SwarmOptions o = Torrent(4);
  o.max_peers = 2;
  TestSwarm fetcher(env_, c, o);
  std::vector<std::string> dialed;
  fetcher.set_connector(
      [&](const PeerEndpoint& to) { dialed.push_back(to.ToString()); });
  const PeerEndpoint a = *PeerEndpoint::FromIpString("10.1.0.1", 1);
  const PeerEndpoint b = *PeerEndpoint::FromIpString("10.1.0.2", 1);
  const PeerEndpoint d = *PeerEndpoint::FromIpString("10.1.0.3", 1);
  fetcher.ConnectTo({a, b, d});
  EXPECT_EQ(dialed, (std::vector<std::string>{"10.1.0.1:1", "10.1.0.2:1"}));
  EXPECT_EQ(fetcher.num_known_peers(), 3u);
  fetcher.OnConnectFailed(a);
  env_.TickAll();
  EXPECT_EQ(dialed.back(), "10.1.0.3:1");
  ASSERT_EQ(dialed.size(), 3u);
  // The node's own limit is not the peer's failure: tried again, and again.
  fetcher.OnConnectFailed(b, /*peer_fault=*/false);
  fetcher.OnConnectFailed(d);
  // Every dial from here on fails at once: a and d by their fault, b not.
  size_t answered = dialed.size();
  for (int i = 0; i < 12 * 60; ++i) {
    env_.TickAll();
    for (; answered < dialed.size(); ++answered) {
      const std::string& to = dialed[answered];
      fetcher.OnConnectFailed(
          *PeerEndpoint::FromIpString(to.substr(0, to.find(':')), 1),
          /*peer_fault=*/to != "10.1.0.2:1");
    }
  }
  // a and d failed three times each and are forgotten; b is still tried.
  EXPECT_EQ(fetcher.num_known_peers(), 1u);
  EXPECT_GT(std::count(dialed.begin(), dialed.end(), "10.1.0.2:1"), 20);
  EXPECT_EQ(std::count(dialed.begin(), dialed.end(), "10.1.0.1:1"), 3);
}

}  // namespace
}  // namespace shoal::node::testing
