// Message Stream Encryption (MSE/PE, "protocol encryption"), the obfuscated
// handshake libtorrent, Transmission and aria2 speak: a Diffie-Hellman
// exchange over a 768-bit prime, the torrent named by a hash only its peers
// can compute, then RC4 (keystream's first 1,024 bytes dropped) or plaintext
// for the rest of the stream. Sans-I/O: bytes in, bytes out.
//
// MseReceiver answers incoming connections that do not start with the
// plaintext handshake; MseInitiator opens outgoing ones.
#ifndef SHOAL_WIRE_MSE_H_
#define SHOAL_WIRE_MSE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "codec/sha.h"

namespace shoal::wire {

// RC4 (what MSE encrypts with). Not a library's: OpenSSL 3 keeps it in its
// legacy provider only.
class Rc4 {
 public:
  // Keys the cipher and drops the first `discard` bytes of keystream.
  Rc4(std::string_view key, size_t discard);
  // Encrypts or decrypts in place (the same operation).
  void Apply(char* data, size_t n);
  void Apply(std::string& s) { Apply(s.data(), s.size()); }

 private:
  std::array<uint8_t, 256> s_{};
  uint8_t i_ = 0;
  uint8_t j_ = 0;
};

// One side's Diffie-Hellman key pair for MSE (G = 2, the 768-bit prime of
// the specification, a 160-bit private key).
class MseKeyPair {
 public:
  // `random_bytes(n)` returns n random bytes.
  explicit MseKeyPair(const std::function<std::string(size_t)>& random_bytes);
  // Our public key, 96 bytes big-endian.
  const std::string& public_key() const { return public_; }
  // The shared secret S from the other side's 96-byte public key, 96 bytes
  // big-endian; InvalidArgument for a key outside [2, P-2].
  absl::StatusOr<std::string> Secret(std::string_view their_public) const;

 private:
  std::string private_;  // 20 bytes
  std::string public_;
};

inline constexpr size_t kMseKeyBytes = 96;
inline constexpr size_t kMseMaxPad = 512;
inline constexpr uint32_t kMsePlaintext = 0x01;
inline constexpr uint32_t kMseRc4 = 0x02;

// SHA-1 of `tag` followed by `a` and `b` (HASH('req1', S) and the like).
codec::Sha1Digest MseHash(std::string_view tag, std::string_view a,
                          std::string_view b = {});
// The RC4 states of a connection: `initiator` picks whose key encrypts
// what we send ('keyA' for the side that opened the connection).
struct MseCiphers {
  std::unique_ptr<Rc4> encrypt;  // what we send
  std::unique_ptr<Rc4> decrypt;  // what we receive
};
MseCiphers MakeMseCiphers(std::string_view secret, std::string_view skey,
                          bool initiator);

// What both sides share: bytes in, bytes out, and once done the method
// chosen, the peer's first stream bytes and the ciphers.
class MseHandshake {
 public:
  virtual ~MseHandshake() = default;
  // Takes received bytes. An error means the connection must be closed.
  absl::Status Feed(std::string_view bytes);
  // Bytes to send now (taken).
  std::string TakeOutput() { return std::exchange(out_, {}); }
  bool done() const { return done_; }

  // Once done: what was chosen (kMsePlaintext or kMseRc4), the peer's first
  // bytes of the BitTorrent stream (decrypted), and, for RC4, the ciphers
  // for the rest of the connection.
  uint32_t selected() const { return selected_; }
  std::string TakePayload() { return std::exchange(payload_, {}); }
  MseCiphers TakeCiphers() { return std::move(ciphers_); }

 protected:
  // One step of the handshake on in_; sets `progressed` when it moved.
  virtual absl::Status Step(bool& progressed) = 0;
  // The handshake is over: `decrypted` (what the peer sent with it, already
  // decrypted), then what is left of in_, are the start of the stream.
  void Finish(std::string decrypted = {});
  // Drops the peer's pad (at most 512 bytes) and `marker` after it: true
  // once done, false while more bytes are needed, an error if the pad is too
  // long.
  absl::StatusOr<bool> SkipPadTo(std::string_view marker,
                                 std::string_view what);
  // 0-512 random bytes, so that the handshake's length says nothing.
  static std::string RandomPad(
      const std::function<std::string(size_t)>& random_bytes);

  std::string in_;
  std::string out_;
  MseCiphers ciphers_;
  uint32_t selected_ = 0;

 private:
  bool done_ = false;
  std::string payload_;
};

// The receiving side of the handshake.
class MseReceiver final : public MseHandshake {
 public:
  struct Options {
    // Returns the 20-byte info-hash (SKEY) whose HASH('req2', SKEY) is
    // `req2`, if we have such a torrent.
    std::function<std::optional<std::string>(const codec::Sha1Digest& req2)>
        find_skey;
    std::function<std::string(size_t)> random_bytes;
  };
  explicit MseReceiver(Options options);
  // Once done: the torrent's info-hash.
  const std::string& skey() const { return skey_; }

 private:
  enum class State { kPublicKey, kSync, kSkey, kVc, kPadC, kInitial, kDone };
  absl::Status Step(bool& progressed) override;

  Options options_;
  MseKeyPair keys_;
  State state_ = State::kPublicKey;
  std::string secret_;
  codec::Sha1Digest req1_{};
  std::string skey_;
  uint32_t provide_ = 0;
  uint16_t pad_c_ = 0;
};

// The initiating side: sends our public key at once, then, knowing the
// secret, the torrent's name hash, the methods we offer and our first bytes
// (the BitTorrent handshake) encrypted.
class MseInitiator final : public MseHandshake {
 public:
  struct Options {
    std::string skey;  // the torrent's 20-byte info-hash, as handshaken
    uint32_t provide = kMseRc4 | kMsePlaintext;
    std::string initial;  // sent encrypted with the handshake (IA)
    std::function<std::string(size_t)> random_bytes;
  };
  explicit MseInitiator(Options options);

 private:
  enum class State { kPublicKey, kSync, kSelect, kPadD, kDone };
  absl::Status Step(bool& progressed) override;

  Options options_;
  MseKeyPair keys_;
  State state_ = State::kPublicKey;
  std::string vc_;  // their encrypted verification constant: the sync point
  uint16_t pad_d_ = 0;
};

}  // namespace shoal::wire

#endif  // SHOAL_WIRE_MSE_H_
