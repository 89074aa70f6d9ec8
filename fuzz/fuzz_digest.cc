// The Authorization header of a CPE (core/auth/digest.h): the Digest and
// Basic parsers, and the Authenticator that checks the header.
//
// Input: one steering byte, then the header value. Properties:
//  - what parse_digest() reads, written back with every value quoted,
//    reads back the same (likewise Basic through base64);
//  - the Authenticator never accepts a header that does not carry the
//    password: the input as given (its nonces are not this process's, its
//    responses are guesses) never authenticates by Digest, and Basic only
//    where allow_basic lets it and with a configured login;
//  - with the nonce replaced by one the Authenticator issued and the right
//    response computed from the password, the header authenticates at most
//    once: the same header again is a replay and is refused.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/auth/digest.h"
#include "fuzz/common.h"

using namespace luacs;
using fuzz::Bytes;

namespace {

std::string quoted(std::string_view v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') s += '\\';
    s += c;
  }
  return s + '"';
}

std::string render(const auth::DigestParams& p) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"username", &p.username},   {"realm", &p.realm},  {"nonce", &p.nonce}, {"uri", &p.uri},
      {"response", &p.response},   {"qop", &p.qop},      {"nc", &p.nc},       {"cnonce", &p.cnonce},
      {"algorithm", &p.algorithm}, {"opaque", &p.opaque}};
  std::string s = "Digest ";
  for (const auto& [name, value] : fields) s += std::string(name) + "=" + quoted(*value) + ", ";
  return s;
}

bool same(const auth::DigestParams& a, const auth::DigestParams& b) {
  return a.username == b.username && a.realm == b.realm && a.nonce == b.nonce && a.uri == b.uri &&
         a.response == b.response && a.qop == b.qop && a.nc == b.nc && a.cnonce == b.cnonce &&
         a.algorithm == b.algorithm && a.opaque == b.opaque;
}

std::string base64(std::string_view in) {
  static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out += k[v >> 18 & 63];
    out += k[v >> 12 & 63];
    out += i + 1 < in.size() ? k[v >> 6 & 63] : '=';
    out += i + 2 < in.size() ? k[v & 63] : '=';
  }
  return out;
}

const config::CpeCredential kLogins[] = {{"cpe", "s3cret", ""}, {"dev", "pw:x\"y", "00D09E-SN1"}};

config::Config make_config(config::BasicAuth basic) {
  config::Config cfg;
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.realm = "luacs";
  cfg.allow_basic = basic;
  cfg.credentials.assign(std::begin(kLogins), std::end(kLogins));
  return cfg;
}

const std::string* password_of(std::string_view user) {
  for (const auto& l : kLogins)
    if (l.username == user) return &l.password;
  return nullptr;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const uint8_t flags = in.byte();
  const std::string header(in.rest());
  const bool tls = flags & 1;
  const auto basic = static_cast<config::BasicAuth>((flags >> 1 & 3) % 3);
  const std::string_view method = flags & 8 ? "GET" : "POST";
  const std::string_view target = flags & 16 ? "/acs?x=1" : "/acs";

  const auto digest = auth::parse_digest(header);
  if (digest) {
    const auto again = auth::parse_digest(render(*digest));
    FUZZ_CHECK(again && same(*again, *digest), "quoted back: " + render(*digest));
  }
  if (const auto b = auth::parse_basic(header)) {
    FUZZ_CHECK(b->username.find(':') == std::string::npos, "Basic username with ':'");
    const auto again = auth::parse_basic("Basic " + base64(b->username + ":" + b->password));
    FUZZ_CHECK(again && again->username == b->username && again->password == b->password,
               "Basic through base64");
  }

  static const auto kNow =
      std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 20'000);
  auth::Authenticator a(make_config(basic));
  const bool basic_ok =
      basic == config::BasicAuth::kAlways || (tls && basic == config::BasicAuth::kTls);

  // The input as it is: no Digest login, Basic only where allowed.
  const auto r = a.check(method, target, header, tls, kNow);
  if (r.verdict == auth::Verdict::kOk) {
    const auto b = auth::parse_basic(header);
    FUZZ_CHECK(r.method == auth::Method::kBasic && basic_ok && b, "authenticated: " + header);
    const std::string* pw = password_of(b->username);
    FUZZ_CHECK(pw && *pw == b->password && r.username == b->username, "Basic login: " + header);
  }

  // Challenges read as Digest parameters, with a nonce of ours.
  const auto challenges = a.challenges(flags & 32, tls, kNow);
  FUZZ_CHECK(!challenges.empty(), "no challenge");
  const auto ch = auth::parse_digest(challenges[0]);
  FUZZ_CHECK(ch && ch->realm == "luacs" && ch->nonce.size() == 32, challenges[0]);
  if (!digest) return 0;

  // The same header with our nonce and, when the user is known, the right
  // response: it may authenticate, once.
  auth::DigestParams p = *digest;
  p.nonce = ch->nonce;
  const std::string* pw = password_of(p.username);
  if (pw && flags & 64) {
    const std::string ha1 = auth::md5_hex(p.username + ":" + p.realm + ":" + *pw);
    const std::string ha2 = auth::md5_hex(std::string(method) + ":" + p.uri);
    p.response = p.qop.empty() ? auth::md5_hex(ha1 + ":" + p.nonce + ":" + ha2)
                               : auth::md5_hex(ha1 + ":" + p.nonce + ":" + p.nc + ":" + p.cnonce +
                                               ":" + p.qop + ":" + ha2);
  }
  const std::string fixed = render(p);
  const auto first = a.check(method, target, fixed, tls, kNow);
  if (first.verdict == auth::Verdict::kOk) {
    FUZZ_CHECK(pw && flags & 64, "authenticated without the password: " + fixed);
    FUZZ_CHECK(first.username == p.username && p.realm == "luacs", "login: " + fixed);
    FUZZ_CHECK(
        first.method == auth::Method::kDigest || first.method == auth::Method::kDigestRfc2069,
        "method");
  }
  const auto second = a.check(method, target, fixed, tls, kNow);
  FUZZ_CHECK(second.verdict != auth::Verdict::kOk, "replayed: " + fixed);
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  // The Authorization lines of the corpus (connection request exchanges).
  for (const auto& [name, text] : fuzz::corpus_files("cwmp", "")) {
    for (size_t at = text.find("Authorization: "); at != std::string::npos;
         at = text.find("Authorization: ", at + 1)) {
      const size_t end = text.find_first_of("\r\n", at);
      const std::string value = text.substr(at + 15, end - at - 15);
      for (uint8_t flags : {0x40, 0x41}) w.add(std::string(1, static_cast<char>(flags)) + value);
    }
  }
  w.add(std::string("\x40") +
        "Digest username=\"cpe\", realm=\"luacs\", nonce=\"x\", uri=\"/acs\", qop=auth, "
        "nc=00000001, cnonce=\"0a4f113b\", response=\"x\", algorithm=MD5, opaque=\"\"");
  w.add(std::string("\x40") + "digest username=dev,realm=luacs,nonce=x,uri=/acs,response=x");
  w.add(std::string("\x07") + "Basic " + base64("cpe:s3cret"));
  w.add(std::string("\x02") + "Basic " + base64("dev:pw:x\"y") + "  ");
}

}  // namespace
