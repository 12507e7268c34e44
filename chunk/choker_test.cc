#include "chunk/choker.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shoal::chunk {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

std::function<uint64_t()> Rng(uint64_t seed) {
  return [rng = std::mt19937_64(seed)]() mutable { return rng(); };
}

ChokePeer Peer(PeerKey key, double download_rate = 0, double upload_rate = 0) {
  return {.key = key,
          .interested = true,
          .download_rate = download_rate,
          .upload_rate = upload_rate,
          .connected_for_ms = 600'000};
}

// The unchoked peers minus the optimistic one.
std::set<PeerKey> Regular(const Choker& choker,
                          const std::vector<PeerKey>& unchoked) {
  std::set<PeerKey> out(unchoked.begin(), unchoked.end());
  out.erase(choker.optimistic());
  return out;
}

// Applies a rechoke result to the peers' choked flags, as the swarm would.
void Apply(std::vector<ChokePeer>& peers,
           const std::vector<PeerKey>& unchoked) {
  for (ChokePeer& p : peers) {
    p.choked =
        std::find(unchoked.begin(), unchoked.end(), p.key) == unchoked.end();
  }
}

// Leeching: the regular slots go to the interested peers that upload to us
// fastest, plus one optimistic unchoke among the rest.
TEST(ChokerTest, TitForTatSlots) {
  Choker choker({.slots = 2}, Rng(1));
  std::vector<ChokePeer> peers = {Peer(1, 100), Peer(2, 500), Peer(3, 300),
                                  Peer(4, 50), Peer(5, 1000)};
  peers[4].interested = false;  // fastest, but wants nothing from us
  std::vector<PeerKey> unchoked = choker.Rechoke(peers, /*seeding=*/false);
  ASSERT_EQ(unchoked.size(), 3u);
  EXPECT_EQ(unchoked[0], 2u);
  EXPECT_EQ(unchoked[1], 3u);
  EXPECT_THAT(std::vector<PeerKey>{choker.optimistic()},
              testing::AnyOf(ElementsAre(1), ElementsAre(4)));
  EXPECT_EQ(unchoked[2], choker.optimistic());
}

// Snubbed peers get no regular slot while leeching, however fast they were;
// seeding ignores the flag.
TEST(ChokerTest, SnubbedPeersGetNoRegularSlot) {
  std::vector<ChokePeer> peers = {Peer(1, 900, 10), Peer(2, 100, 20),
                                  Peer(3, 50, 30)};
  peers[0].snubbed = true;
  Choker leech({.slots = 1, .optimistic_every = 1000}, Rng(2));
  std::vector<PeerKey> unchoked = leech.Rechoke(peers, false);
  EXPECT_EQ(unchoked[0], 2u);
  EXPECT_THAT(Regular(leech, unchoked), ElementsAre(2));
  Choker seed({.slots = 1}, Rng(2));
  EXPECT_EQ(seed.Rechoke(peers, true)[0], 3u);  // fastest upload
}

// Trusted peers are always unchoked, interested or not, and take no slot.
TEST(ChokerTest, TrustedPeersNeverChokedAndOutsideSlots) {
  Choker choker({.slots = 1}, Rng(3));
  std::vector<ChokePeer> peers = {Peer(1, 10), Peer(2, 20), Peer(3, 0),
                                  Peer(4, 0)};
  peers[2].trusted = true;
  peers[3].trusted = true;
  peers[3].interested = false;
  peers[3].snubbed = true;
  for (int round = 0; round < 6; ++round) {
    std::vector<PeerKey> unchoked = choker.Rechoke(peers, round % 2 == 0);
    EXPECT_THAT(unchoked, Contains(3));
    EXPECT_THAT(unchoked, Contains(4));
    EXPECT_NE(choker.optimistic(), 3u);
    EXPECT_NE(choker.optimistic(), 4u);
    // One regular slot plus the optimistic unchoke of the other peer.
    EXPECT_THAT(unchoked, UnorderedElementsAre(1, 2, 3, 4));
    Apply(peers, unchoked);
  }
}

// Negative slots mean every interested peer is unchoked; zero slots leave
// only the optimistic unchoke.
TEST(ChokerTest, UnlimitedAndZeroSlots) {
  std::vector<ChokePeer> peers = {Peer(1), Peer(2), Peer(3), Peer(4)};
  peers[3].interested = false;
  Choker unlimited({.slots = -1}, Rng(4));
  EXPECT_THAT(unlimited.Rechoke(peers, false), UnorderedElementsAre(1, 2, 3));
  Choker none({.slots = 0}, Rng(4));
  std::vector<PeerKey> unchoked = none.Rechoke(peers, false);
  ASSERT_EQ(unchoked.size(), 1u);
  EXPECT_EQ(unchoked[0], none.optimistic());
  EXPECT_NE(unchoked[0], 4u);
  Choker empty({}, Rng(4));
  EXPECT_THAT(empty.Rechoke({}, false), IsEmpty());
  EXPECT_EQ(empty.optimistic(), 0u);
}

// At equal rates the peers already unchoked keep their slots.
TEST(ChokerTest, EqualRatesKeepCurrentSlots) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Choker choker({.slots = 2, .optimistic_every = 1000}, Rng(seed));
    std::vector<ChokePeer> peers = {Peer(1, 5), Peer(2, 5), Peer(3, 5),
                                    Peer(4, 5)};
    peers[1].choked = false;
    peers[3].choked = false;
    EXPECT_THAT(Regular(choker, choker.Rechoke(peers, false)),
                ElementsAre(2, 4));
  }
}

// The optimistic unchoke changes every optimistic_every rounds (not in
// between), goes to a choked interested peer, and is replaced at once if it
// stops being interested.
TEST(ChokerTest, OptimisticRotation) {
  Choker choker({.slots = 1, .optimistic_every = 3}, Rng(5));
  std::vector<ChokePeer> peers = {Peer(1, 100), Peer(2), Peer(3), Peer(4),
                                  Peer(5)};
  std::vector<PeerKey> history;
  for (int round = 1; round <= 9; ++round) {
    std::vector<PeerKey> unchoked = choker.Rechoke(peers, false);
    ASSERT_EQ(unchoked.size(), 2u);
    EXPECT_EQ(unchoked[0], 1u);
    EXPECT_EQ(unchoked[1], choker.optimistic());
    if (round % 3 != 1) {
      EXPECT_EQ(choker.optimistic(), history.back()) << round;
    } else if (!history.empty()) {
      EXPECT_NE(choker.optimistic(), history.back()) << round;
    }
    history.push_back(choker.optimistic());
    Apply(peers, unchoked);
  }
  // The optimistic peer loses interest: replaced mid-period.
  PeerKey old = choker.optimistic();
  for (ChokePeer& p : peers) p.interested = p.key != old;
  std::vector<PeerKey> unchoked = choker.Rechoke(peers, false);
  EXPECT_NE(choker.optimistic(), old);
  EXPECT_NE(choker.optimistic(), 0u);
  EXPECT_THAT(unchoked, Not(Contains(old)));
}

// New peers (connected < 60 s) are three times as likely to be picked for
// the optimistic unchoke.
TEST(ChokerTest, OptimisticFavoursNewPeers) {
  std::map<PeerKey, int> picked;
  std::vector<ChokePeer> peers = {Peer(1), Peer(2), Peer(3), Peer(4)};
  peers[0].connected_for_ms = 5'000;  // weight 3 of a total of 6
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    Choker choker({.slots = 0}, Rng(seed));
    choker.Rechoke(peers, false);
    ++picked[choker.optimistic()];
  }
  EXPECT_GT(picked[1], 1300);
  EXPECT_LT(picked[1], 1700);
  for (PeerKey k : {2, 3, 4}) {
    EXPECT_GT(picked[k], 350) << k;
    EXPECT_LT(picked[k], 650) << k;
  }
}

// Seeding: slots rotate round-robin (each peer holds one for
// seed_rotation_rounds, then the longest-waiting peers take over), and among
// equals the fastest downloaders from us go first.
TEST(ChokerTest, SeedingRotatesAndFavoursFastest) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Choker choker(
        {.slots = 2, .optimistic_every = 1000, .seed_rotation_rounds = 2},
        Rng(seed));
    std::vector<ChokePeer> peers = {Peer(1), Peer(2), Peer(3),
                                    Peer(4), Peer(5), Peer(6)};
    std::map<PeerKey, int> slots, run, gap, max_gap;
    for (int round = 0; round < 30; ++round) {
      std::vector<PeerKey> unchoked = choker.Rechoke(peers, /*seeding=*/true);
      std::set<PeerKey> regular = Regular(choker, unchoked);
      ASSERT_EQ(regular.size(), 2u);
      for (const ChokePeer& p : peers) {
        if (regular.count(p.key)) {
          ++slots[p.key];
          gap[p.key] = 0;
          EXPECT_LE(++run[p.key], 2) << p.key;  // its turn, no more
        } else {
          run[p.key] = 0;
          max_gap[p.key] = std::max(max_gap[p.key], ++gap[p.key]);
        }
      }
      Apply(peers, unchoked);
      // We upload to unchoked peers; peer 6 takes much more than the rest.
      for (ChokePeer& p : peers) {
        p.upload_rate = p.choked ? 0 : (p.key == 6 ? 1000 : 100);
      }
    }
    for (PeerKey k = 1; k <= 6; ++k) {
      EXPECT_EQ(slots[k], 10) << k;   // 60 slot-rounds shared evenly
      EXPECT_LE(max_gap[k], 4) << k;  // never waits longer than its turn
    }
  }

  // Among peers that waited as long, the faster download from us wins.
  Choker fresh({.slots = 1}, Rng(7));
  std::vector<ChokePeer> two = {Peer(1, 0, 10), Peer(2, 0, 20)};
  EXPECT_EQ(fresh.Rechoke(two, true)[0], 2u);
}

// All decisions come from the injected random source: the same seed gives
// the same answers.
TEST(ChokerTest, Deterministic) {
  std::vector<ChokePeer> peers;
  for (PeerKey k = 1; k <= 20; ++k) {
    peers.push_back(
        Peer(k, static_cast<double>(k % 4), static_cast<double>(k % 3)));
  }
  for (bool seeding : {false, true}) {
    Choker a({.slots = 4, .optimistic_every = 2}, Rng(8));
    Choker b({.slots = 4, .optimistic_every = 2}, Rng(8));
    std::vector<ChokePeer> pa = peers, pb = peers;
    for (int round = 0; round < 10; ++round) {
      std::vector<PeerKey> ua = a.Rechoke(pa, seeding);
      std::vector<PeerKey> ub = b.Rechoke(pb, seeding);
      ASSERT_EQ(ua, ub);
      Apply(pa, ua);
      Apply(pb, ub);
    }
  }
}

}  // namespace
}  // namespace shoal::chunk
