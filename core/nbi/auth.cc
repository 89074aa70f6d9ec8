#include "core/nbi/auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "core/util/hex.h"
#include "core/util/text.h"

namespace luacs::nbi {

std::string new_secret() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char b : raw) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string token_text(int64_t id, std::string_view secret) {
  return "lcs_" + std::to_string(id) + "_" + std::string(secret);
}

std::optional<TokenText> parse_token(std::string_view text) {
  if (text.substr(0, 4) != "lcs_") return std::nullopt;
  text.remove_prefix(4);
  const auto us = text.find('_');
  if (us == std::string_view::npos || us == 0 || us > 18) return std::nullopt;
  TokenText t;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + us, t.id);
  if (ec != std::errc() || end != text.data() + us || t.id <= 0) return std::nullopt;
  const auto secret = text.substr(us + 1);
  if (secret.size() != 64) return std::nullopt;
  for (const char c : secret)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  t.secret = std::string(secret);
  return t;
}

std::string hash_secret(std::string_view secret) {
  return util::sha256_hex(secret);
}

bool secret_matches(std::string_view stored_hash, std::string_view secret) {
  const std::string h = hash_secret(secret);
  return stored_hash.size() == h.size() &&
         CRYPTO_memcmp(stored_hash.data(), h.data(), h.size()) == 0;
}

std::string_view bearer_of(std::string_view authorization) {
  authorization = text::trim(authorization);
  if (authorization.size() < 7 || !text::iequals(authorization.substr(0, 7), "Bearer ")) return {};
  return text::trim(authorization.substr(7));
}

std::chrono::milliseconds Throttle::delay(const std::string& address, Clock::time_point now) const {
  const auto it = entries_.find(address);
  if (it == entries_.end() || now - it->second.last > kWindow) return {};
  const int over = it->second.failures - kFree;
  if (over < 0) return {};
  const auto d = std::chrono::milliseconds(250) * (int64_t{1} << std::min(over, 10));
  return std::min<std::chrono::milliseconds>(d, kMaxDelay);
}

void Throttle::failed(const std::string& address, Clock::time_point now) {
  auto it = entries_.find(address);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxAddresses) {
      // Forget the stalest address (rare: only under a spray of failures).
      auto oldest = entries_.begin();
      for (auto e = entries_.begin(); e != entries_.end(); ++e)
        if (e->second.last < oldest->second.last) oldest = e;
      entries_.erase(oldest);
    }
    it = entries_.emplace(address, Entry{}).first;
  }
  if (now - it->second.last > kWindow) it->second.failures = 0;
  ++it->second.failures;
  it->second.last = now;
}

}  // namespace luacs::nbi
