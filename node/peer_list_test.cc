#include "node/peer_list.h"

#include "gtest/gtest.h"

namespace shoal::node {
namespace {

PeerEndpoint Ep(const char* ip, uint16_t port) {
  return *PeerEndpoint::FromIpString(ip, port);
}

std::vector<std::string> DueNow(const PeerList& list, uint64_t now,
                                size_t n = 100) {
  std::vector<std::string> out;
  for (const PeerEndpoint& p :
       list.Due(now, n, [](const PeerEndpoint&, bool) { return false; }))
    out.push_back(p.ToString());
  return out;
}

TEST(PeerListTest, NewPeersAreDueAtOnceInTheOrderTheyCame) {
  PeerList list;
  list.Add(Ep("10.0.0.2", 1), 5);
  list.Add(Ep("10.0.0.1", 1), 5);
  list.Add(Ep("10.0.0.2", 1), 5);  // again: still one
  list.Add(Ep("10.0.0.3", 0), 5);  // no port: not dialable
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(DueNow(list, 5),
            (std::vector<std::string>{"10.0.0.2:1", "10.0.0.1:1"}));
  EXPECT_EQ(DueNow(list, 5, 1), (std::vector<std::string>{"10.0.0.2:1"}));
}

TEST(PeerListTest, FailuresWaitLongerEachTimeAndTheThirdForgets) {
  PeerList list;  // 60 ticks per failure, 3 failures
  const PeerEndpoint a = Ep("10.0.0.1", 1);
  list.Add(a, 0);
  list.Failed(a, 0);
  EXPECT_TRUE(DueNow(list, 59).empty());
  EXPECT_EQ(DueNow(list, 60).size(), 1u);
  list.Failed(a, 60);
  EXPECT_TRUE(DueNow(list, 179).empty());
  EXPECT_EQ(DueNow(list, 180).size(), 1u);
  // A tracker naming it again does not cut its wait short.
  list.Add(a, 100);
  EXPECT_TRUE(DueNow(list, 179).empty());
  list.Failed(a, 180);
  EXPECT_FALSE(list.Contains(a));
}

TEST(PeerListTest, FewerFailuresFirst) {
  PeerList list;
  const PeerEndpoint a = Ep("10.0.0.1", 1), b = Ep("10.0.0.2", 1);
  list.Add(a, 0);
  list.Add(b, 0);
  list.Failed(a, 0);
  EXPECT_EQ(DueNow(list, 1000),
            (std::vector<std::string>{"10.0.0.2:1", "10.0.0.1:1"}));
}

TEST(PeerListTest, AConnectedPeerIsNotDueAndReturnsAfterItsWait) {
  PeerList list;  // 60 ticks to reconnect; under 10 connected is a failure
  const PeerEndpoint a = Ep("10.0.0.1", 1);
  list.Add(a, 0);
  list.Failed(a, 0);
  list.Connected(a, 60);
  EXPECT_TRUE(DueNow(list, 61).empty());
  list.Disconnected(a, 500, /*seed=*/false);
  EXPECT_TRUE(DueNow(list, 559).empty());
  EXPECT_EQ(DueNow(list, 560).size(), 1u);
  // It stayed long enough: its earlier failure is forgiven, so two quick
  // closes (two failures) do not forget it yet.
  list.Connected(a, 560);
  list.Disconnected(a, 561, false);
  list.Connected(a, 700);
  list.Disconnected(a, 701, false);
  EXPECT_TRUE(list.Contains(a));
  list.Connected(a, 900);
  list.Disconnected(a, 901, false);
  EXPECT_FALSE(list.Contains(a));  // the third
}

TEST(PeerListTest, IncomingPeersAreKnownByTheirListenPort) {
  PeerList list;
  const PeerEndpoint a = Ep("10.0.0.1", 6881);
  list.Connected(a, 3);  // never named by anyone: added, connected
  EXPECT_TRUE(list.Contains(a));
  EXPECT_TRUE(DueNow(list, 3).empty());
  list.Add(a, 4);  // a tracker names it while it is here
  EXPECT_TRUE(DueNow(list, 4).empty());
  list.Disconnected(a, 100, /*seed=*/true);
  // The caller decides what a seed means to it (a seed skips seeds).
  EXPECT_TRUE(
      list.Due(1000, 10, [](const PeerEndpoint&, bool seed) { return seed; })
          .empty());
  EXPECT_EQ(DueNow(list, 1000).size(), 1u);
}

TEST(PeerListTest, ClosedByUsIsDueAtOnce) {
  PeerList list;
  const PeerEndpoint a = Ep("10.0.0.1", 1);
  list.Connected(a, 0);
  list.Disconnected(a, 1, /*seed=*/false, /*ours=*/true);  // a pause
  EXPECT_EQ(DueNow(list, 1).size(), 1u);
}

TEST(PeerListTest, PostponeWaitsWithoutAFailure) {
  PeerList list;
  const PeerEndpoint a = Ep("10.0.0.1", 1);
  list.Add(a, 0);
  for (int i = 0; i < 5; ++i) list.Postpone(a, 0, 30);
  EXPECT_TRUE(DueNow(list, 29).empty());
  EXPECT_EQ(DueNow(list, 30).size(), 1u);
}

TEST(PeerListTest, FullListMakesRoomOnlyFromPeersThatFailed) {
  PeerList list(PeerList::Options{.max_size = 2});
  const PeerEndpoint a = Ep("10.0.0.1", 1), b = Ep("10.0.0.2", 1),
                     c = Ep("10.0.0.3", 1);
  list.Add(a, 0);
  list.Add(b, 0);
  list.Add(c, 0);  // nobody failed: c is dropped
  EXPECT_FALSE(list.Contains(c));
  list.Failed(b, 0);
  list.Add(c, 0);  // b failed: c takes its place
  EXPECT_TRUE(list.Contains(c));
  EXPECT_FALSE(list.Contains(b));
  EXPECT_EQ(list.size(), 2u);
}

TEST(PeerListTest, IPv6AndIPv4AreDifferentPeers) {
  PeerList list;
  list.Add(Ep("::1", 1), 0);
  list.Add(Ep("127.0.0.1", 1), 0);
  list.Remove(Ep("127.0.0.1", 1));
  EXPECT_EQ(DueNow(list, 0), (std::vector<std::string>{"[::1]:1"}));
}

}  // namespace
}  // namespace shoal::node
