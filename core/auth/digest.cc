#include "core/auth/digest.h"
#include "core/util/hex.h"
#include "core/util/text.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <stdexcept>

namespace luacs::auth {

namespace {

using std::chrono::milliseconds;

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// RFC 7230 tchar.
bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos);
}

// Message digests are fetched once: an implicit fetch per call costs a
// lock and a lookup in OpenSSL 3.
const EVP_MD* fetched(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (!md) throw std::runtime_error(std::string("OpenSSL: ") + name + " is not available");
  return md;
}

const EVP_MD* md5() {
  static const EVP_MD* md = fetched("MD5");
  return md;
}

const EVP_MD* sha256() {
  static const EVP_MD* md = fetched("SHA256");
  return md;
}

std::array<unsigned char, 32> sha256_of(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, sha256(), nullptr) != 1 ||
      len != out.size())
    throw std::runtime_error("OpenSSL: SHA-256 failed");
  return out;
}

// The nonce: ts (6 bytes, ms since the epoch, big-endian) | counter (4) |
// HMAC-SHA256(secret, ts | counter) truncated to 6 bytes; 32 hex characters,
// because some CPEs keep the nonce in a 32-byte buffer and cut a longer one.
// A forged nonce would need 2^47 tries on average, and only buys a nonce:
// the response still needs the password.
constexpr size_t kNonceTime = 6;
constexpr size_t kNonceData = kNonceTime + 4;
constexpr size_t kNonceMac = 6;
constexpr size_t kNonceBytes = kNonceData + kNonceMac;
static_assert(kNonceBytes * 2 == 32);

void nonce_mac(const std::array<unsigned char, 32>& secret, const unsigned char* data,
               unsigned char* out) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(sha256(), secret.data(), static_cast<int>(secret.size()), data, kNonceData, mac,
            &len) ||
      len < kNonceMac)
    throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
  std::copy(mac, mac + kNonceMac, out);
}

int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// "00000001" -> 1. 1..8 hex digits, value >= 1.
std::optional<uint32_t> parse_nc(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  uint32_t v = 0;
  for (const char c : s) {
    const int h = util::hex_value(c);
    if (h < 0) return std::nullopt;
    v = v << 4 | static_cast<uint32_t>(h);
  }
  if (v == 0) return std::nullopt;
  return v;
}

// The path of a request target or URI: "http://h:1/acs?x" -> "/acs".
std::string_view path_of(std::string_view uri) {
  if (const auto scheme = uri.find("://"); scheme != std::string_view::npos) {
    bool is_scheme = scheme > 0;
    for (size_t i = 0; i < scheme; ++i) {
      const char c = uri[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' || c == '-' || c == '.' ||
            (i > 0 && c >= '0' && c <= '9')))
        is_scheme = false;
    }
    if (is_scheme) {
      const auto slash = uri.find('/', scheme + 3);
      uri = slash == std::string_view::npos ? std::string_view("/") : uri.substr(slash);
    }
  }
  uri = uri.substr(0, uri.find_first_of("?#"));
  return uri.empty() ? std::string_view("/") : uri;
}

// The digest uri must name the request target: equal, or the same path
// (some CPEs send the absolute URL, some drop the query).
bool uri_matches(std::string_view digest_uri, std::string_view target) {
  return digest_uri == target || path_of(digest_uri) == path_of(target);
}

// Constant-time comparison of two lower-case hex digests of equal length.
bool same_digest(std::string_view expected, std::string_view given) {
  if (given.size() != expected.size()) return false;
  char norm[64];
  if (given.size() > sizeof norm) return false;
  for (size_t i = 0; i < given.size(); ++i) norm[i] = text::ascii_lower(given[i]);
  return CRYPTO_memcmp(norm, expected.data(), expected.size()) == 0;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Splits "Scheme rest": the scheme token and what follows the blanks.
bool split_scheme(std::string_view header, std::string_view scheme, std::string_view& rest) {
  while (!header.empty() && is_ows(header.front())) header.remove_prefix(1);
  if (header.size() < scheme.size() || !text::iequals(header.substr(0, scheme.size()), scheme))
    return false;
  rest = header.substr(scheme.size());
  if (!rest.empty() && !is_ows(rest.front())) return false;  // "Digestive ..."
  while (!rest.empty() && is_ows(rest.front())) rest.remove_prefix(1);
  return true;
}

std::optional<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && is_ows(in.back())) in.remove_suffix(1);
  size_t pad = 0;
  while (!in.empty() && in.back() == '=' && pad < 2) {
    in.remove_suffix(1);
    ++pad;
  }
  if ((in.size() + pad) % 4 != 0 && pad != 0) return std::nullopt;
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace

// ---- parsing ---------------------------------------------------------------

std::optional<DigestParams> parse_digest(std::string_view authorization) {
  std::string_view s;
  if (!split_scheme(authorization, "Digest", s)) return std::nullopt;
  DigestParams p;
  std::array<bool, 10> seen{};
  size_t i = 0;
  while (true) {
    while (i < s.size() && (is_ows(s[i]) || s[i] == ',')) ++i;
    if (i == s.size()) break;
    const size_t key_start = i;
    while (i < s.size() && is_tchar(s[i])) ++i;
    const std::string_view key = s.substr(key_start, i - key_start);
    if (key.empty()) return std::nullopt;
    while (i < s.size() && is_ows(s[i])) ++i;
    if (i == s.size() || s[i] != '=') return std::nullopt;
    ++i;
    while (i < s.size() && is_ows(s[i])) ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i == s.size()) return std::nullopt;
          value += s[i++];
        } else {
          value += c;
        }
      }
      if (!closed) return std::nullopt;
    } else {
      // Unquoted: a token by the RFC, but some CPEs send uri=/path
      // unquoted, so take everything up to a comma or a blank.
      const size_t v_start = i;
      while (i < s.size() && s[i] != ',' && !is_ows(s[i])) {
        if (s[i] == '"') return std::nullopt;
        ++i;
      }
      value = std::string(s.substr(v_start, i - v_start));
    }
    while (i < s.size() && is_ows(s[i])) ++i;
    if (i < s.size() && s[i] != ',') return std::nullopt;

    static constexpr std::string_view kNames[] = {"username",  "realm", "nonce", "uri",
                                                  "response",  "qop",   "nc",    "cnonce",
                                                  "algorithm", "opaque"};
    std::string* fields[] = {&p.username, &p.realm, &p.nonce,  &p.uri,       &p.response,
                             &p.qop,      &p.nc,    &p.cnonce, &p.algorithm, &p.opaque};
    for (size_t k = 0; k < std::size(kNames); ++k) {
      if (!text::iequals(key, kNames[k])) continue;
      if (seen[k]) return std::nullopt;  // ambiguous: which one would a proxy have checked?
      seen[k] = true;
      *fields[k] = std::move(value);
      break;
    }
  }
  return p;
}

std::optional<BasicCredentials> parse_basic(std::string_view authorization) {
  std::string_view rest;
  if (!split_scheme(authorization, "Basic", rest) || rest.empty()) return std::nullopt;
  auto decoded = base64_decode(rest);
  if (!decoded) return std::nullopt;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return BasicCredentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::string md5_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, md5(), nullptr) != 1)
    throw std::runtime_error("OpenSSL: MD5 failed");
  return util::to_hex(md, len);
}

// ---- nonces ----------------------------------------------------------------

struct NonceTable::Shard {
  struct Entry {
    int64_t issued_ms;
    uint32_t last_nc;  // UINT32_MAX once used up
  };
  std::mutex mutex;
  std::unordered_map<uint32_t, Entry> entries;  // by nonce counter
  int64_t next_sweep_ms = 0;
};

NonceTable::NonceTable(std::chrono::seconds lifetime)
    : lifetime_(lifetime), shards_(std::make_unique<Shard[]>(kShards)) {
  uint32_t start = 0;
  if (RAND_bytes(secret_.data(), static_cast<int>(secret_.size())) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(&start), sizeof start) != 1)
    throw std::runtime_error("OpenSSL: RAND_bytes failed");
  counter_.store(start, std::memory_order_relaxed);
}

NonceTable::~NonceTable() {
  OPENSSL_cleanse(secret_.data(), secret_.size());
}

std::string NonceTable::issue(TimePoint now) {
  unsigned char raw[kNonceBytes];
  const auto ms = static_cast<uint64_t>(to_ms(now));
  const uint32_t n = counter_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < kNonceTime; ++i)
    raw[i] = static_cast<unsigned char>(ms >> (8 * (kNonceTime - 1 - i)));
  for (size_t i = 0; i < 4; ++i)
    raw[kNonceTime + i] = static_cast<unsigned char>(n >> (24 - 8 * i));
  nonce_mac(secret_, raw, raw + kNonceData);
  return util::to_hex(raw, sizeof raw);
}

namespace {

// Decodes a nonce; false if it is not one of ours (length, hex, MAC).
bool decode_nonce(std::string_view nonce, const std::array<unsigned char, 32>& secret,
                  int64_t& issued_ms, uint32_t& counter) {
  if (nonce.size() != kNonceBytes * 2) return false;
  unsigned char raw[kNonceBytes];
  for (size_t i = 0; i < kNonceBytes; ++i) {
    const int hi = util::hex_value(nonce[2 * i]), lo = util::hex_value(nonce[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  unsigned char mac[kNonceMac];
  nonce_mac(secret, raw, mac);
  if (CRYPTO_memcmp(mac, raw + kNonceData, kNonceMac) != 0) return false;
  uint64_t ms = 0;
  for (size_t i = 0; i < kNonceTime; ++i) ms = ms << 8 | raw[i];
  uint32_t n = 0;
  for (size_t i = 0; i < 4; ++i) n = n << 8 | raw[kNonceTime + i];
  issued_ms = static_cast<int64_t>(ms);
  counter = n;
  return true;
}

}  // namespace

NonceTable::Check NonceTable::verify(std::string_view nonce, TimePoint now) const {
  int64_t issued = 0;
  uint32_t counter = 0;
  if (!decode_nonce(nonce, secret_, issued, counter)) return Check::kInvalid;
  const int64_t age = to_ms(now) - issued;
  // A nonce from "the future" is tolerated up to one lifetime, for a
  // system clock stepped backwards.
  if (age < -lifetime_.count()) return Check::kInvalid;
  if (age > lifetime_.count()) return Check::kStale;
  return Check::kValid;
}

NonceTable::Check NonceTable::check(std::string_view nonce, std::string_view nc_hex,
                                    TimePoint now) {
  const Check v = verify(nonce, now);
  if (v != Check::kValid) return v;
  int64_t issued = 0;
  uint32_t counter = 0;
  decode_nonce(nonce, secret_, issued, counter);
  uint32_t nc = UINT32_MAX;  // RFC 2069: no nc, the nonce is used up
  if (!nc_hex.empty()) {
    const auto parsed = parse_nc(nc_hex);
    if (!parsed) return Check::kInvalid;
    nc = *parsed;
  }

  Shard& shard = shards_[counter % kShards];
  const int64_t now_ms = to_ms(now);
  std::lock_guard lock(shard.mutex);
  if (now_ms >= shard.next_sweep_ms) {
    // Entries die with their nonce; sweeping a shard every quarter lifetime
    // keeps the table to the nonces of roughly one lifetime.
    std::erase_if(shard.entries,
                  [&](const auto& kv) { return now_ms - kv.second.issued_ms > lifetime_.count(); });
    shard.next_sweep_ms = now_ms + std::max<int64_t>(lifetime_.count() / 4, 1000);
  }
  auto [it, inserted] = shard.entries.try_emplace(counter, Shard::Entry{issued, nc});
  if (inserted) return Check::kValid;
  if (it->second.issued_ms != issued) {
    // The 32-bit counter wrapped onto an old entry: this is a new nonce.
    it->second = Shard::Entry{issued, nc};
    return Check::kValid;
  }
  if (nc_hex.empty() || nc <= it->second.last_nc) return Check::kReplay;
  it->second.last_nc = nc;
  return Check::kValid;
}

size_t NonceTable::tracked() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    n += shards_[i].entries.size();
  }
  return n;
}

// ---- the authenticator -----------------------------------------------------

Authenticator::Authenticator(const config::Config& cfg)
    : enabled_(cfg.auth_mode != config::AuthMode::kNone),
      allow_basic_(cfg.allow_basic),
      realm_(cfg.realm),
      nonces_(cfg.nonce_lifetime) {
  // Device-bound logins first: when one password fits both a bound and an
  // unbound login of the same username, the bound one (which says which
  // device this is) wins.
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& c : cfg.credentials) {
      if (c.device_id.empty() != (pass == 1)) continue;
      Login l;
      l.username = c.username;
      l.device_id = c.device_id;
      l.ha1 = md5_hex(c.username + ":" + realm_ + ":" + c.password);
      l.password_sha256 = sha256_of(c.password);
      by_username_[l.username].push_back(logins_.size());
      logins_.push_back(std::move(l));
    }
  }
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1)
    throw std::runtime_error("OpenSSL: RAND_bytes failed");
  dummy_ha1_ = md5_hex(std::string_view(reinterpret_cast<char*>(random), sizeof random));
}

Authenticator::~Authenticator() {
  for (auto& l : logins_) {
    OPENSSL_cleanse(l.ha1.data(), l.ha1.size());
    OPENSSL_cleanse(l.password_sha256.data(), l.password_sha256.size());
  }
}

AuthResult Authenticator::check(std::string_view method, std::string_view uri,
                                std::string_view authorization, bool tls, TimePoint now) {
  if (!enabled_) return {Verdict::kOk, Method::kNone, "", "", {}};
  std::string_view trimmed = authorization;
  while (!trimmed.empty() && is_ows(trimmed.front())) trimmed.remove_prefix(1);
  if (trimmed.empty()) return {Verdict::kMissing, Method::kNone, "", "", {}};
  std::string_view rest;
  if (split_scheme(trimmed, "Basic", rest)) {
    if (!basic_allowed(tls)) return {Verdict::kOtherScheme, Method::kBasic, "", "", "Basic is off"};
    return check_basic(trimmed);
  }
  if (!split_scheme(trimmed, "Digest", rest))
    return {Verdict::kOtherScheme, Method::kNone, "", "", "unknown scheme"};
  return check_digest(method, uri, trimmed, now);
}

AuthResult Authenticator::check_basic(std::string_view authorization) {
  const auto creds = parse_basic(authorization);
  if (!creds) return {Verdict::kFailed, Method::kBasic, "", "", "malformed Basic credentials"};
  AuthResult fail{Verdict::kFailed, Method::kBasic, creds->username, "", "wrong password"};
  const auto given = sha256_of(creds->password);
  const auto it = by_username_.find(creds->username);
  if (it == by_username_.end()) {
    fail.reason = "unknown user";
    return fail;
  }
  for (const size_t i : it->second) {
    const Login& l = logins_[i];
    if (CRYPTO_memcmp(given.data(), l.password_sha256.data(), given.size()) == 0)
      return {Verdict::kOk, Method::kBasic, l.username, l.device_id, {}};
  }
  return fail;
}

AuthResult Authenticator::check_digest(std::string_view method, std::string_view uri,
                                       std::string_view authorization, TimePoint now) {
  const auto p = parse_digest(authorization);
  if (!p) return {Verdict::kFailed, Method::kDigest, "", "", "malformed Digest header"};
  const bool legacy = p->qop.empty();
  const Method how = legacy ? Method::kDigestRfc2069 : Method::kDigest;
  AuthResult fail{Verdict::kFailed, how, p->username, "", {}};
  auto failed = [&](std::string_view why) {
    fail.reason = why;
    return fail;
  };
  if (p->username.empty() || p->nonce.empty() || p->uri.empty() || p->response.empty())
    return failed("incomplete Digest header");
  if (p->realm != realm_) return failed("wrong realm");
  if (!p->algorithm.empty() && !text::iequals(p->algorithm, "MD5"))
    return failed("algorithm not offered");
  if (!legacy) {
    if (p->qop != "auth") return failed("qop not offered");  // auth-int: see digest.h
    if (p->nc.empty() || p->cnonce.empty() || !parse_nc(p->nc))
      return failed("qop=auth without a valid nc and cnonce");
  } else if (!p->nc.empty() || !p->cnonce.empty()) {
    return failed("nc or cnonce without qop");  // not a form any RFC defines
  }
  if (!uri_matches(p->uri, uri)) return failed("uri is not the request's");

  std::string ha2_in;
  ha2_in.reserve(method.size() + 1 + p->uri.size());
  ha2_in.append(method).append(":").append(p->uri);
  const std::string ha2 = md5_hex(ha2_in);
  auto expected_for = [&](const std::string& ha1) {
    std::string s = ha1 + ":" + p->nonce + ":";
    if (!legacy) s += p->nc + ":" + p->cnonce + ":" + p->qop + ":";
    s += ha2;
    return md5_hex(s);
  };

  // The credentials first, whatever the nonce: whether a nonce we cannot
  // take is a stale one (challenge again, stale=true) or a failure depends
  // on them.
  const Login* matched = nullptr;
  const auto it = by_username_.find(p->username);
  if (it == by_username_.end()) {
    same_digest(expected_for(dummy_ha1_), p->response);  // same work as a known user
    return failed("unknown user");
  }
  for (const size_t i : it->second) {
    if (same_digest(expected_for(logins_[i].ha1), p->response)) {
      matched = &logins_[i];
      break;
    }
  }
  if (!matched) return failed("wrong password");
  AuthResult stale{Verdict::kStale, how, matched->username, "", {}};
  switch (nonces_.check(p->nonce, legacy ? std::string_view() : std::string_view(p->nc), now)) {
    case NonceTable::Check::kValid:
      return {Verdict::kOk, how, matched->username, matched->device_id, {}};
    case NonceTable::Check::kStale:
      stale.reason = "nonce expired";
      break;
    case NonceTable::Check::kReplay:
      stale.reason = "nonce-count already seen";
      break;
    case NonceTable::Check::kInvalid:
      stale.reason = "nonce not issued here";
      break;
  }
  return stale;
}

std::string_view to_string(Method m) {
  switch (m) {
    case Method::kNone:
      return "none";
    case Method::kDigest:
      return "digest";
    case Method::kDigestRfc2069:
      return "digest-rfc2069";
    case Method::kBasic:
      return "basic";
  }
  return "none";
}

std::vector<std::string> Authenticator::challenges(bool stale, bool tls, TimePoint now) {
  std::vector<std::string> out;
  if (!enabled_) return out;
  std::string digest = "Digest realm=" + quoted(realm_) + ", qop=\"auth\", nonce=\"" +
                       nonces_.issue(now) + "\", algorithm=MD5";
  if (stale) digest += ", stale=true";
  out.push_back(std::move(digest));
  if (basic_allowed(tls)) out.push_back("Basic realm=" + quoted(realm_));
  return out;
}

}  // namespace luacs::auth
