#include "wire/mse.h"

#include <random>

#include "gtest/gtest.h"

namespace shoal::wire {
namespace {

std::function<std::string(size_t)> Random(uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [rng](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>((*rng)());
    return s;
  };
}

// RC4's published test vectors (key "Key", "Wiki"; no bytes dropped).
TEST(Rc4Test, KnownVectors) {
  std::string a = "Plaintext";
  Rc4("Key", 0).Apply(a);
  EXPECT_EQ(a, std::string("\xBB\xF3\x16\xE8\xD9\x40\xAF\x0A\xD3", 9));
  std::string b = "pedia";
  Rc4("Wiki", 0).Apply(b);
  EXPECT_EQ(b, std::string("\x10\x21\xBF\x04\x20", 5));
}

TEST(MseKeyPairTest, BothSidesAgreeOnTheSecretAndRejectWeakKeys) {
  MseKeyPair a(Random(1)), b(Random(2));
  ASSERT_EQ(a.public_key().size(), kMseKeyBytes);
  auto sa = a.Secret(b.public_key());
  auto sb = b.Secret(a.public_key());
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_EQ(*sa, *sb);
  EXPECT_FALSE(a.Secret(std::string(kMseKeyBytes, '\0')).ok());
  std::string one(kMseKeyBytes, '\0');
  one.back() = 1;
  EXPECT_FALSE(a.Secret(one).ok());
  EXPECT_FALSE(a.Secret(std::string(kMseKeyBytes, '\xff')).ok());
  EXPECT_FALSE(a.Secret("short").ok());
}

// The initiator's side, played by hand, byte by byte into the receiver.
struct Initiator {
  MseKeyPair keys{Random(7)};
  std::string skey = std::string(20, 'h');
  std::string secret;
  MseCiphers ciphers;

  std::string Hello(size_t pad) {
    return keys.public_key() + std::string(pad, 'p');
  }
  // After their public key: req1, req2^req3, then encrypted VC, provide,
  // PadC, IA.
  std::string Request(std::string_view their_public, uint32_t provide,
                      std::string_view initial) {
    secret = *keys.Secret(their_public);
    std::string out;
    codec::Sha1Digest r1 = MseHash("req1", secret);
    out.append(reinterpret_cast<const char*>(r1.data()), 20);
    codec::Sha1Digest r2 = MseHash("req2", skey), r3 = MseHash("req3", secret);
    for (int k = 0; k < 20; ++k)
      out.push_back(static_cast<char>(r2[k] ^ r3[k]));
    ciphers = MakeMseCiphers(secret, skey, /*initiator=*/true);
    std::string enc(8, '\0');
    enc += std::string{0, 0, 0, static_cast<char>(provide)};
    enc += std::string{0, 3} + "pad";
    enc += std::string{0, static_cast<char>(initial.size())};
    enc += initial;
    ciphers.encrypt->Apply(enc);
    return out + enc;
  }
};

MseReceiver::Options Opts(uint64_t seed) {
  MseReceiver::Options o;
  o.random_bytes = Random(seed);
  o.find_skey =
      [](const codec::Sha1Digest& req2) -> std::optional<std::string> {
    if (req2 == MseHash("req2", std::string(20, 'h')))
      return std::string(20, 'h');
    return std::nullopt;
  };
  return o;
}

TEST(MseReceiverTest, Rc4HandshakeThenStream) {
  Initiator a;
  MseReceiver b(Opts(3));
  // Byte by byte: no step may assume a whole message in one read.
  for (char c : a.Hello(100)) ASSERT_TRUE(b.Feed(std::string(1, c)).ok());
  const std::string hello = b.TakeOutput();
  ASSERT_GE(hello.size(), kMseKeyBytes);
  std::string req = a.Request(hello.substr(0, kMseKeyBytes), kMseRc4, "HELLO");
  std::string more = "stream";
  a.ciphers.encrypt->Apply(more);
  // The last byte of the handshake comes with the first of the stream.
  for (size_t k = 0; k + 1 < req.size(); ++k) {
    ASSERT_TRUE(b.Feed(req.substr(k, 1)).ok());
    ASSERT_FALSE(b.done());
  }
  ASSERT_TRUE(b.Feed(req.substr(req.size() - 1) + more).ok());
  ASSERT_TRUE(b.done());
  EXPECT_EQ(b.selected(), kMseRc4);
  EXPECT_EQ(b.skey(), std::string(20, 'h'));
  EXPECT_EQ(b.TakePayload(), "HELLOstream");
  // Their reply: VC, crypto_select, len(PadD), under their key.
  std::string reply = b.TakeOutput();
  ASSERT_EQ(reply.size(), 14u);
  a.ciphers.decrypt->Apply(reply);
  EXPECT_EQ(reply, std::string("\0\0\0\0\0\0\0\0\0\0\0\x02\0\0", 14));
  // The stream continues both ways under the same keystreams.
  MseCiphers c = b.TakeCiphers();
  std::string to_a = "bitfield";
  c.encrypt->Apply(to_a);
  a.ciphers.decrypt->Apply(to_a);
  EXPECT_EQ(to_a, "bitfield");
}

// libtorrent writes its initial payload (its BitTorrent handshake) apart from
// the rest of its request, and with Nagle's algorithm it waits for our ACK of
// that rest: our answer must not wait for the payload.
TEST(MseReceiverTest, AnswersBeforeTheInitialPayload) {
  Initiator a;
  MseReceiver b(Opts(5));
  ASSERT_TRUE(b.Feed(a.Hello(0)).ok());
  const std::string hello = b.TakeOutput();
  const std::string req =
      a.Request(hello.substr(0, kMseKeyBytes), kMseRc4, "HANDSHAKE");
  const size_t payload = std::string_view("HANDSHAKE").size();
  ASSERT_TRUE(b.Feed(req.substr(0, req.size() - payload)).ok());
  EXPECT_FALSE(b.done());
  std::string reply = b.TakeOutput();
  ASSERT_EQ(reply.size(), 14u);
  a.ciphers.decrypt->Apply(reply);
  EXPECT_EQ(reply, std::string("\0\0\0\0\0\0\0\0\0\0\0\x02\0\0", 14));
  ASSERT_TRUE(b.Feed(req.substr(req.size() - payload)).ok());
  EXPECT_TRUE(b.done());
  EXPECT_EQ(b.TakeOutput(), "");
  EXPECT_EQ(b.TakePayload(), "HANDSHAKE");
}

TEST(MseReceiverTest, PlaintextChosenWhenOffered) {
  Initiator a;
  MseReceiver b(Opts(4));
  ASSERT_TRUE(b.Feed(a.Hello(0)).ok());
  std::string hello = b.TakeOutput();
  ASSERT_TRUE(b.Feed(a.Request(hello.substr(0, kMseKeyBytes),
                               kMseRc4 | kMsePlaintext, "") +
                     "raw")
                  .ok());
  ASSERT_TRUE(b.done());
  EXPECT_EQ(b.selected(), kMsePlaintext);
  EXPECT_EQ(b.TakePayload(), "raw");
  EXPECT_EQ(b.TakeCiphers().encrypt, nullptr);
}

TEST(MseReceiverTest, HostileInputIsRefused) {
  {  // an unknown torrent
    Initiator a;
    a.skey = std::string(20, 'x');
    MseReceiver b(Opts(5));
    ASSERT_TRUE(b.Feed(a.Hello(0)).ok());
    std::string hello = b.TakeOutput();
    EXPECT_FALSE(
        b.Feed(a.Request(hello.substr(0, kMseKeyBytes), kMseRc4, "")).ok());
  }
  {  // no req1 within the longest pad
    Initiator a;
    MseReceiver b(Opts(6));
    ASSERT_TRUE(b.Feed(a.Hello(0)).ok());
    EXPECT_FALSE(b.Feed(std::string(600, 'z')).ok());
  }
  {  // a method we do not speak
    Initiator a;
    MseReceiver b(Opts(7));
    ASSERT_TRUE(b.Feed(a.Hello(0)).ok());
    std::string hello = b.TakeOutput();
    EXPECT_FALSE(
        b.Feed(a.Request(hello.substr(0, kMseKeyBytes), 0x08, "")).ok());
  }
  {  // a weak public key
    MseReceiver b(Opts(8));
    EXPECT_FALSE(b.Feed(std::string(kMseKeyBytes, '\0')).ok());
  }
}

// Our two sides against each other, in chunks of every size from 1 to 64.
TEST(MseInitiatorTest, TalksToTheReceiverBothMethods) {
  for (uint32_t provide : {kMseRc4, kMseRc4 | kMsePlaintext}) {
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}}) {
      MseInitiator::Options ao;
      ao.skey = std::string(20, 'h');
      ao.provide = provide;
      ao.initial = "HANDSHAKE";
      ao.random_bytes = Random(10 + chunk);
      MseInitiator a(std::move(ao));
      MseReceiver b(Opts(20 + chunk));
      // Shuttle bytes until both are done.
      for (int round = 0; round < 20 && !(a.done() && b.done()); ++round) {
        const std::string to_b = a.TakeOutput();
        for (size_t k = 0; k < to_b.size() && !b.done(); k += chunk)
          ASSERT_TRUE(b.Feed(to_b.substr(k, chunk)).ok());
        const std::string to_a = b.TakeOutput();
        for (size_t k = 0; k < to_a.size() && !a.done(); k += chunk)
          ASSERT_TRUE(a.Feed(to_a.substr(k, chunk)).ok());
      }
      ASSERT_TRUE(a.done() && b.done());
      const uint32_t want = (provide & kMsePlaintext) ? kMsePlaintext : kMseRc4;
      EXPECT_EQ(a.selected(), want);
      EXPECT_EQ(b.selected(), want);
      EXPECT_EQ(b.TakePayload(), "HANDSHAKE");
      if (want == kMseRc4) {
        MseCiphers ca = a.TakeCiphers(), cb = b.TakeCiphers();
        std::string m = "piece";
        ca.encrypt->Apply(m);
        EXPECT_NE(m, "piece");
        cb.decrypt->Apply(m);
        EXPECT_EQ(m, "piece");
        cb.encrypt->Apply(m);
        ca.decrypt->Apply(m);
        EXPECT_EQ(m, "piece");
      } else {
        EXPECT_EQ(a.TakeCiphers().encrypt, nullptr);
      }
    }
  }
}

// A receiver that selects what we did not offer is refused.
TEST(MseInitiatorTest, RefusesAMethodNotOffered) {
  MseInitiator::Options ao;
  ao.skey = std::string(20, 'h');
  ao.provide = kMseRc4;
  ao.random_bytes = Random(30);
  MseInitiator a(std::move(ao));
  MseKeyPair b(Random(31));
  const std::string hello = a.TakeOutput();
  std::string secret = *b.Secret(hello.substr(0, kMseKeyBytes));
  ASSERT_TRUE(a.Feed(b.public_key()).ok());
  MseCiphers cb = MakeMseCiphers(secret, std::string(20, 'h'), false);
  std::string reply("\0\0\0\0\0\0\0\0\0\0\0\x01\0\0", 14);
  cb.encrypt->Apply(reply);
  EXPECT_FALSE(a.Feed(reply).ok());
}

}  // namespace
}  // namespace shoal::wire
