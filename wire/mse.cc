#include "wire/mse.h"

#include <openssl/bn.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace shoal::wire {
namespace {

// The MSE prime (768 bits), big-endian.
constexpr char kPrimeHex[] =
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA6"
    "3B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"
    "E485B576625E7EC6F44C42E9A63A36210000000000090563";

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct CtxDeleter {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;

Bn Prime() {
  BIGNUM* p = nullptr;
  BN_hex2bn(&p, kPrimeHex);
  return Bn(p);
}

Bn FromBytes(std::string_view s) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()),
                      static_cast<int>(s.size()), nullptr));
}

std::string ToBytes(const BIGNUM* b) {
  std::string out(kMseKeyBytes, '\0');
  BN_bn2binpad(b, reinterpret_cast<unsigned char*>(out.data()),
               static_cast<int>(out.size()));
  return out;
}

// a^e mod P.
Bn ModExp(const BIGNUM* a, const BIGNUM* e) {
  Bn p = Prime();
  Bn r(BN_new());
  std::unique_ptr<BN_CTX, CtxDeleter> ctx(BN_CTX_new());
  BN_mod_exp(r.get(), a, e, p.get(), ctx.get());
  return r;
}

std::string_view View(const codec::Sha1Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

uint32_t Be32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) |
         (uint32_t{u[2]} << 8) | u[3];
}

uint16_t Be16(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

}  // namespace

Rc4::Rc4(std::string_view key, size_t discard) {
  for (int k = 0; k < 256; ++k) s_[k] = static_cast<uint8_t>(k);
  uint8_t j = 0;
  for (int k = 0; k < 256; ++k) {
    j = static_cast<uint8_t>(j + s_[k] +
                             static_cast<uint8_t>(key[k % key.size()]));
    std::swap(s_[k], s_[j]);
  }
  std::string drop(discard, '\0');
  Apply(drop);
}

void Rc4::Apply(char* data, size_t n) {
  uint8_t i = i_, j = j_;
  for (size_t k = 0; k < n; ++k) {
    i = static_cast<uint8_t>(i + 1);
    j = static_cast<uint8_t>(j + s_[i]);
    std::swap(s_[i], s_[j]);
    data[k] ^= static_cast<char>(s_[static_cast<uint8_t>(s_[i] + s_[j])]);
  }
  i_ = i;
  j_ = j;
}

MseKeyPair::MseKeyPair(const std::function<std::string(size_t)>& random_bytes)
    : private_(random_bytes(20)) {
  Bn g(BN_new());
  BN_set_word(g.get(), 2);
  Bn x = FromBytes(private_);
  public_ = ToBytes(ModExp(g.get(), x.get()).get());
}

absl::StatusOr<std::string> MseKeyPair::Secret(
    std::string_view their_public) const {
  if (their_public.size() != kMseKeyBytes)
    return absl::InvalidArgumentError("MSE public key of the wrong size");
  Bn y = FromBytes(their_public);
  Bn p = Prime();
  Bn p_minus_1(BN_dup(p.get()));
  BN_sub_word(p_minus_1.get(), 1);
  // 0, 1 and P-1 (and anything past P) would force a known secret.
  if (BN_cmp(y.get(), BN_value_one()) <= 0 ||
      BN_cmp(y.get(), p_minus_1.get()) >= 0) {
    return absl::InvalidArgumentError("MSE public key out of range");
  }
  Bn x = FromBytes(private_);
  return ToBytes(ModExp(y.get(), x.get()).get());
}

codec::Sha1Digest MseHash(std::string_view tag, std::string_view a,
                          std::string_view b) {
  codec::Sha1 h;
  h.Update(tag);
  h.Update(a);
  h.Update(b);
  return h.Final();
}

MseCiphers MakeMseCiphers(std::string_view secret, std::string_view skey,
                          bool initiator) {
  const codec::Sha1Digest a = MseHash("keyA", secret, skey);
  const codec::Sha1Digest b = MseHash("keyB", secret, skey);
  MseCiphers c;
  c.encrypt = std::make_unique<Rc4>(View(initiator ? a : b), 1024);
  c.decrypt = std::make_unique<Rc4>(View(initiator ? b : a), 1024);
  return c;
}

absl::Status MseHandshake::Feed(std::string_view bytes) {
  if (done_) return absl::FailedPreconditionError("MSE handshake already done");
  in_.append(bytes);
  bool progressed = true;
  while (progressed && !done_) {
    progressed = false;
    if (absl::Status s = Step(progressed); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> MseHandshake::SkipPadTo(std::string_view marker,
                                             std::string_view what) {
  const size_t at = in_.find(marker);
  if (at == std::string::npos) {
    if (in_.size() >= kMseMaxPad + marker.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MSE: no ", std::string(what), " within 512 bytes of padding"));
    }
    return false;
  }
  if (at > kMseMaxPad) {
    return absl::InvalidArgumentError("MSE: padding longer than 512 bytes");
  }
  in_.erase(0, at + marker.size());
  return true;
}

std::string MseHandshake::RandomPad(
    const std::function<std::string(size_t)>& random_bytes) {
  const std::string n = random_bytes(2);
  return random_bytes(Be16(n.data()) % (kMseMaxPad + 1));
}

void MseHandshake::Finish(std::string decrypted) {
  if (selected_ == kMseRc4) {
    ciphers_.decrypt->Apply(in_);
  } else {
    ciphers_ = {};
  }
  payload_ = std::move(decrypted) + in_;
  in_.clear();
  done_ = true;
}

MseReceiver::MseReceiver(Options options)
    : options_(std::move(options)), keys_(options_.random_bytes) {}

absl::Status MseReceiver::Step(bool& progressed) {
  switch (state_) {
    case State::kPublicKey: {
      if (in_.size() < kMseKeyBytes) return absl::OkStatus();
      auto s = keys_.Secret(std::string_view(in_).substr(0, kMseKeyBytes));
      if (!s.ok()) return s.status();
      secret_ = *std::move(s);
      in_.erase(0, kMseKeyBytes);
      req1_ = MseHash("req1", secret_);
      // Our public key and a random pad (0-512 bytes) that hides its length.
      out_ += keys_.public_key();
      out_ += RandomPad(options_.random_bytes);
      state_ = State::kSync;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kSync: {
      // HASH('req1', S) follows their pad of at most 512 bytes.
      auto found = SkipPadTo(View(req1_), "req1 hash");
      if (!found.ok()) return found.status();
      if (!*found) return absl::OkStatus();
      state_ = State::kSkey;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kSkey: {
      if (in_.size() < 20) return absl::OkStatus();
      const codec::Sha1Digest req3 = MseHash("req3", secret_);
      codec::Sha1Digest req2{};
      for (size_t k = 0; k < 20; ++k)
        req2[k] = static_cast<uint8_t>(in_[k]) ^ req3[k];
      in_.erase(0, 20);
      std::optional<std::string> skey = options_.find_skey(req2);
      if (!skey) {
        return absl::NotFoundError(
            "MSE: the peer asked for no torrent of ours");
      }
      skey_ = *std::move(skey);
      ciphers_ = MakeMseCiphers(secret_, skey_, /*initiator=*/false);
      state_ = State::kVc;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kVc: {
      // VC (8 zero bytes), crypto_provide (4), len(PadC) (2), encrypted.
      if (in_.size() < 14) return absl::OkStatus();
      ciphers_.decrypt->Apply(in_.data(), 14);
      for (int k = 0; k < 8; ++k) {
        if (in_[k] != 0) {
          return absl::InvalidArgumentError(
              "MSE: bad verification constant (not our torrent's key)");
        }
      }
      provide_ = Be32(in_.data() + 8);
      pad_c_ = Be16(in_.data() + 12);
      in_.erase(0, 14);
      if (pad_c_ > kMseMaxPad) {
        return absl::InvalidArgumentError("MSE: PadC longer than 512 bytes");
      }
      state_ = State::kPadC;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kPadC: {
      if (in_.size() < size_t{pad_c_} + 2u) return absl::OkStatus();
      ciphers_.decrypt->Apply(in_.data(), pad_c_ + 2u);
      const uint16_t ia = Be16(in_.data() + pad_c_);
      in_.erase(0, pad_c_ + 2u);
      pad_c_ = ia;  // now the length of the initial payload
      // Plaintext when offered (as libtorrent's default, prefer_rc4 off: the
      // handshake is hidden all the same), else RC4.
      if (provide_ & kMsePlaintext) {
        selected_ = kMsePlaintext;
      } else if (provide_ & kMseRc4) {
        selected_ = kMseRc4;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "MSE: the peer offers no method we speak (crypto_provide ",
            provide_, ")"));
      }
      // The answer goes now, before the initial payload arrives: libtorrent
      // writes that payload (its handshake) apart, and with Nagle's algorithm
      // its kernel holds it until we acknowledge what came before; ours
      // delays that ACK 40 ms unless it has something to send.
      std::string reply(8, '\0');
      const char sel[6] = {0, 0, 0, static_cast<char>(selected_), 0, 0};
      reply.append(sel, sizeof(sel));  // crypto_select, len(PadD) = 0
      ciphers_.encrypt->Apply(reply);
      out_ += reply;
      state_ = State::kInitial;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kInitial: {
      if (in_.size() < pad_c_) return absl::OkStatus();
      ciphers_.decrypt->Apply(in_.data(), pad_c_);
      // The initial payload, then the stream itself.
      std::string initial = in_.substr(0, pad_c_);
      in_.erase(0, pad_c_);
      Finish(std::move(initial));
      state_ = State::kDone;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kDone:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

MseInitiator::MseInitiator(Options options)
    : options_(std::move(options)), keys_(options_.random_bytes) {
  out_ = keys_.public_key() + RandomPad(options_.random_bytes);
}

absl::Status MseInitiator::Step(bool& progressed) {
  switch (state_) {
    case State::kPublicKey: {
      if (in_.size() < kMseKeyBytes) return absl::OkStatus();
      auto secret = keys_.Secret(std::string_view(in_).substr(0, kMseKeyBytes));
      if (!secret.ok()) return secret.status();
      in_.erase(0, kMseKeyBytes);
      out_.append(View(MseHash("req1", *secret)));
      const codec::Sha1Digest r2 = MseHash("req2", options_.skey);
      const codec::Sha1Digest r3 = MseHash("req3", *secret);
      for (size_t k = 0; k < 20; ++k)
        out_.push_back(static_cast<char>(r2[k] ^ r3[k]));
      ciphers_ = MakeMseCiphers(*secret, options_.skey, /*initiator=*/true);
      if (options_.initial.size() > 0xffff) {
        return absl::InvalidArgumentError("MSE: initial payload too long");
      }
      std::string enc(8, '\0');  // VC
      const uint32_t p = options_.provide;
      const uint16_t ia = static_cast<uint16_t>(options_.initial.size());
      const char fields[8] = {static_cast<char>(p >> 24),
                              static_cast<char>(p >> 16),
                              static_cast<char>(p >> 8),
                              static_cast<char>(p),
                              0,
                              0,  // len(PadC) = 0
                              static_cast<char>(ia >> 8),
                              static_cast<char>(ia)};
      enc.append(fields, sizeof(fields));
      enc += options_.initial;
      ciphers_.encrypt->Apply(enc);
      out_ += enc;
      // Their VC, encrypted, marks the end of their pad: the decrypting
      // keystream's next 8 bytes over zeros.
      vc_.assign(8, '\0');
      ciphers_.decrypt->Apply(vc_);
      state_ = State::kSync;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kSync: {
      auto found = SkipPadTo(vc_, "verification constant");
      if (!found.ok()) return found.status();
      if (!*found) return absl::OkStatus();
      state_ = State::kSelect;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kSelect: {
      if (in_.size() < 6) return absl::OkStatus();
      ciphers_.decrypt->Apply(in_.data(), 6);
      selected_ = Be32(in_.data());
      pad_d_ = Be16(in_.data() + 4);
      in_.erase(0, 6);
      if ((selected_ != kMsePlaintext && selected_ != kMseRc4) ||
          (selected_ & options_.provide) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("MSE: the peer selected a method we did not offer (",
                         selected_, ")"));
      }
      if (pad_d_ > kMseMaxPad) {
        return absl::InvalidArgumentError("MSE: PadD longer than 512 bytes");
      }
      state_ = State::kPadD;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kPadD: {
      if (in_.size() < pad_d_) return absl::OkStatus();
      ciphers_.decrypt->Apply(in_.data(), pad_d_);
      in_.erase(0, pad_d_);
      Finish();
      state_ = State::kDone;
      progressed = true;
      return absl::OkStatus();
    }
    case State::kDone:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace shoal::wire
