// API tokens and the slow-down of guessing ones.
//
// A token is "lcs_<id>_<secret>": the id finds its api_tokens row, the
// secret (32 random bytes, hex) is checked against the row's SHA-256 with a
// constant-time comparison. Only the hash is stored; `luacs token add`
// prints the token once. Tokens never go to a log: a log line names the
// token's name, or "invalid token".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace luacs::nbi {

struct TokenText {
  int64_t id = 0;
  std::string secret;
};

// 64 hex characters from the OpenSSL random generator.
std::string new_secret();
std::string token_text(int64_t id, std::string_view secret);
// nullopt unless `text` has the shape above.
std::optional<TokenText> parse_token(std::string_view text);
std::string hash_secret(std::string_view secret);  // hex SHA-256
// Constant time in the secret's content.
bool secret_matches(std::string_view stored_hash, std::string_view secret);
// The bearer token of an Authorization header value, or "" (no header, or
// another scheme).
std::string_view bearer_of(std::string_view authorization);

// Failed token checks per client address. After kFree failures within
// kWindow each further request from that address waits before it is
// checked: 250 ms doubling per failure, at most kMaxDelay. A success
// forgives the address. Bounded: at most kMaxAddresses remembered (the
// oldest forgotten first).
class Throttle {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kFree = 5;
  static constexpr std::chrono::minutes kWindow{10};
  static constexpr std::chrono::milliseconds kMaxDelay{10'000};
  static constexpr size_t kMaxAddresses = 10'000;

  std::chrono::milliseconds delay(const std::string& address, Clock::time_point now) const;
  void failed(const std::string& address, Clock::time_point now);
  void succeeded(const std::string& address) { entries_.erase(address); }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last{};
  };
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace luacs::nbi
