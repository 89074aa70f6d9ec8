// CPE -> ACS HTTP authentication: Digest (RFC 7616 / 2617, MD5) and Basic.
//
// The server asks the Authenticator about each request that needs
// authenticating (in practice the first request on a TCP connection) and,
// on anything but kOk, answers 401 with challenges(). What is accepted:
//
//  - Digest, algorithm=MD5 (or absent), qop=auth. MD5-sess and SHA-256 are
//    not offered and are refused. qop=auth-int is refused too: the check runs
//    on the request head, before the body has been read, so the body hash
//    cannot be verified; we only ever offer qop="auth".
//  - Digest without qop (RFC 2069 legacy form: response = MD5(HA1:nonce:HA2)),
//    which some old CPE stacks still send. Accepted with the nonce made
//    single-use: without nc the only replay defence is refusing a second use
//    of the nonce, so that is what happens. It has no client nonce, so it is
//    weaker against a man in the middle, who on plain HTTP can read and rewrite
//    the whole session anyway.
//  - Basic only where [auth] allow_basic lets it: inside TLS (`tls`), or
//    also on plain HTTP (`true`, a risk).
//
// Nonces are stateless (issue time + counter + HMAC-SHA256 under a random
// per-process secret), so issuing one costs no memory; the replay table only
// holds nonces that have authenticated a request, until they expire. A nonce
// from another luacs process (another node, or before a restart) is not
// authentic here: the CPE is simply challenged again.
//
// Nothing secret (passwords, HA1, the nonce secret) is logged or put in an
// exception message.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/config/config.h"

namespace luacs::auth {

// The parameters of an `Authorization: Digest ...` header, unquoted and
// unescaped. Absent parameters are empty.
struct DigestParams {
  std::string username, realm, nonce, uri, response, qop, nc, cnonce, algorithm, opaque;
};
// `authorization` is the whole header value: `Digest k=v, k="v", ...` (scheme
// case-insensitive, parameters in any order, quoted-string escapes, optional
// spaces; unknown parameters ignored). nullopt if the scheme is not Digest,
// the syntax is broken, or a known parameter is given twice.
std::optional<DigestParams> parse_digest(std::string_view authorization);

struct BasicCredentials {
  std::string username, password;
};
// `Basic <base64(user:password)>`; nullopt if malformed or without ':'.
std::optional<BasicCredentials> parse_basic(std::string_view authorization);

// Lower-case hex MD5 of `data`.
std::string md5_hex(std::string_view data);

// Nonces and the nonce-count replay table. Thread-safe.
class NonceTable {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  enum class Check { kValid, kStale, kInvalid, kReplay };

  explicit NonceTable(std::chrono::seconds lifetime);
  ~NonceTable();
  NonceTable(const NonceTable&) = delete;
  NonceTable& operator=(const NonceTable&) = delete;

  // A fresh nonce: 32 lower-case hex characters, unique within the process.
  std::string issue(TimePoint now);

  // Authenticity and age only; records nothing. kInvalid: not issued by
  // this table (or issued "in the future" by more than the lifetime);
  // kStale: authentic but older than the lifetime.
  Check verify(std::string_view nonce, TimePoint now) const;

  // verify(), then the nonce-count rule: nc (1..8 hex digits, >= 1) must be
  // greater than any nc already accepted for this nonce; on kValid it is
  // recorded. An empty nc_hex (RFC 2069 form) uses the nonce up: accepted
  // only if the nonce has not been used at all. Call it only once the
  // request has been proven authentic, or anybody could burn nonce-counts.
  Check check(std::string_view nonce, std::string_view nc_hex, TimePoint now);

  // Nonces in the replay table (tests, metrics).
  size_t tracked() const;

 private:
  struct Shard;
  static constexpr size_t kShards = 64;

  std::chrono::milliseconds lifetime_;
  std::array<unsigned char, 32> secret_{};
  std::atomic<uint32_t> counter_;
  std::unique_ptr<Shard[]> shards_;
};

enum class Verdict {
  kOk,           // authenticated
  kMissing,      // no Authorization header: challenge (not a failure)
  kOtherScheme,  // Basic while Basic is off, or a scheme we do not take:
                 // challenge with Digest (not a failure)
  kStale,        // right credentials on a nonce we cannot take (expired, used,
                 // or not ours: another process): challenge with stale=true
  kFailed,       // wrong password, unknown user, malformed: count a failure
};

// How a request authenticated (for the session log line).
enum class Method { kNone, kDigest, kDigestRfc2069, kBasic };
std::string_view to_string(Method m);  // "none", "digest", "digest-rfc2069", "basic"

struct AuthResult {
  Verdict verdict = Verdict::kFailed;
  Method method = Method::kNone;  // the scheme tried (kNone: none, or one we do not know)
  std::string username;           // the credential's, on kOk; the claimed one otherwise (may be "")
  std::string device_id;          // the matched credential's bound device ("" = any device)
  std::string_view reason;        // on kFailed and kStale: why, for the log (no secrets)
};

// One per server, shared by the worker threads (thread-safe).
class Authenticator {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit Authenticator(const config::Config& cfg);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // False when [auth] mode = none: check() then always says kOk.
  bool enabled() const { return enabled_; }

  // `authorization` is the Authorization header value ("" if absent);
  // method and uri (the request target) come from the request line.
  // Basic where it is not accepted and an unknown scheme are kOtherScheme
  // (some CPEs try Basic first); a malformed header or wrong credentials are
  // kFailed. A Digest response is checked before its nonce: right
  // credentials on a nonce that cannot be taken (expired, its nonce-count
  // already seen -- CPEs that reuse the last session's nonce with nc=1 --,
  // or issued by another process) are kStale, so the CPE retries on a fresh
  // nonce without that counting as a failure (RFC 7616 3.3). A nonce-count
  // is recorded only once the response has been verified, so failed
  // attempts never burn a legitimate CPE's counts.
  AuthResult check(std::string_view method, std::string_view uri, std::string_view authorization,
                   bool tls, TimePoint now);

  // WWW-Authenticate values for a 401, one header each:
  //   Digest realm="...", qop="auth", nonce="...", algorithm=MD5[, stale=true]
  //   Basic realm="..."            (where [auth] allow_basic lets it)
  // Empty when authentication is disabled.
  std::vector<std::string> challenges(bool stale, bool tls, TimePoint now);

 private:
  struct Login {
    std::string username;
    std::string device_id;
    std::string ha1;                                // MD5(username:realm:password), hex
    std::array<unsigned char, 32> password_sha256;  // for Basic, compared in constant time
  };

  AuthResult check_basic(std::string_view authorization);
  AuthResult check_digest(std::string_view method, std::string_view uri,
                          std::string_view authorization, TimePoint now);

  bool basic_allowed(bool tls) const {
    return allow_basic_ == config::BasicAuth::kAlways ||
           (tls && allow_basic_ == config::BasicAuth::kTls);
  }

  bool enabled_;
  config::BasicAuth allow_basic_;
  std::string realm_;
  NonceTable nonces_;
  std::vector<Login> logins_;  // device-bound logins first (more specific)
  std::unordered_map<std::string, std::vector<size_t>> by_username_;
  std::string dummy_ha1_;  // keeps an unknown username as slow as a known one
};

}  // namespace luacs::auth
