#include "core/auth/digest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <thread>

namespace luacs::auth {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

const Clock::time_point kT0 = Clock::time_point(std::chrono::seconds(1'700'000'000));

std::string read_file(const std::string& path) {
  std::string text;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return text;
}

// The value of the first "<name>: " header line in `text`.
std::string header_value(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto start = at + name.size() + 3;
  const auto end = text.find_first_of("\r\n", start);
  return text.substr(start, end - start);
}

// What a CPE sends back for a challenge (RFC 7616 client side).
struct Client {
  std::string user = "cpe", realm = "luacs", password = "secret";
  std::string method = "POST", uri = "/", cnonce = "0a4f113b9c2d7e61", qop = "auth";
  std::string algorithm = "MD5";

  std::string response(const std::string& nonce, const std::string& nc) const {
    const std::string ha1 = md5_hex(user + ":" + realm + ":" + password);
    const std::string ha2 = md5_hex(method + ":" + uri);
    if (qop.empty()) return md5_hex(ha1 + ":" + nonce + ":" + ha2);
    return md5_hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2);
  }
  std::string header(const std::string& nonce, const std::string& nc = "00000001") const {
    std::string h = "Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" + nonce +
                    "\", uri=\"" + uri + "\"";
    if (!algorithm.empty()) h += ", algorithm=" + algorithm;
    if (!qop.empty()) h += ", qop=" + qop + ", nc=" + nc + ", cnonce=\"" + cnonce + "\"";
    h += ", response=\"" + response(nonce, nc) + "\"";
    return h;
  }
};

// The nonce of a Digest challenge.
std::string nonce_of(const std::string& challenge) {
  const auto p = parse_digest(challenge);
  return p ? p->nonce : "";
}

config::Config digest_config() {
  config::Config cfg;
  cfg.auth_mode = config::AuthMode::kDigest;
  cfg.credentials = {{"cpe", "secret", ""},
                     {"dev", "devpass", "00E04C-W5%2D2100G-D8365F659C6E"},
                     {"shared", "pw-a", "A-A"},
                     {"shared", "pw-b", "B-B"}};
  return cfg;
}

// ---- parsing ---------------------------------------------------------------

TEST(ParseDigest, MikroTikStyleHeader) {
  const auto p = parse_digest(
      R"(Digest username="qacafe", realm="qacafe", uri="/", algorithm=MD5, nonce="abc", nc=00000001, cnonce="x", qop=auth, response="0123456789abcdef0123456789abcdef", opaque="")");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->username, "qacafe");
  EXPECT_EQ(p->realm, "qacafe");
  EXPECT_EQ(p->uri, "/");
  EXPECT_EQ(p->algorithm, "MD5");
  EXPECT_EQ(p->nonce, "abc");
  EXPECT_EQ(p->nc, "00000001");
  EXPECT_EQ(p->cnonce, "x");
  EXPECT_EQ(p->qop, "auth");
  EXPECT_EQ(p->response, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(p->opaque, "");
}

TEST(ParseDigest, QuotedCommasEscapesOrderAndSpacing) {
  const auto p = parse_digest(
      "digest   NONCE=\"n,1\",username=\"a\\\"b\\\\c\" ,\tREALM = \"r, s\",,  uri=/acs?x=1,"
      "charset=UTF-8, userhash=false, response=\"R\",");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->nonce, "n,1");
  EXPECT_EQ(p->username, "a\"b\\c");
  EXPECT_EQ(p->realm, "r, s");
  EXPECT_EQ(p->uri, "/acs?x=1");  // unquoted uri, as some CPEs send it
  EXPECT_EQ(p->response, "R");
  EXPECT_EQ(p->qop, "");
}

TEST(ParseDigest, Malformed) {
  EXPECT_FALSE(parse_digest(""));
  EXPECT_FALSE(parse_digest("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(parse_digest("Digestusername=\"a\""));
  EXPECT_FALSE(parse_digest("Digest username"));
  EXPECT_FALSE(parse_digest("Digest username=\"abc"));    // unterminated
  EXPECT_FALSE(parse_digest("Digest username=\"abc\\"));  // dangling escape
  EXPECT_FALSE(parse_digest("Digest username=\"a\"b"));   // junk after the quote
  EXPECT_FALSE(parse_digest("Digest username=a b"));      // two tokens
  EXPECT_FALSE(parse_digest("Digest =x"));
  EXPECT_FALSE(parse_digest("Digest username=\"a\", username=\"b\""));  // given twice
  ASSERT_TRUE(parse_digest("Digest"));
  EXPECT_EQ(parse_digest("Digest")->username, "");
}

TEST(ParseBasic, Forms) {
  auto b = parse_basic("Basic dXNlcjpwYXNz");  // user:pass
  ASSERT_TRUE(b);
  EXPECT_EQ(b->username, "user");
  EXPECT_EQ(b->password, "pass");
  b = parse_basic("basic  dTpwOnc6");  // u:p:w:
  ASSERT_TRUE(b);
  EXPECT_EQ(b->username, "u");
  EXPECT_EQ(b->password, "p:w:");
  b = parse_basic("Basic dTpw");  // u:p, no padding needed
  ASSERT_TRUE(b);
  EXPECT_EQ(b->password, "p");
  b = parse_basic("Basic dTo=");  // "u:" (padded)
  ASSERT_TRUE(b);
  EXPECT_EQ(b->password, "");
  EXPECT_FALSE(parse_basic("Basic dXNlcg=="));  // "user": no colon
  EXPECT_FALSE(parse_basic("Basic dXN!cjpw"));  // not base64
  EXPECT_FALSE(parse_basic("Basic dXNlc"));     // impossible length
  EXPECT_FALSE(parse_basic("Basic "));
  EXPECT_FALSE(parse_basic("Digest dXNlcjpwYXNz"));
}

TEST(Md5, KnownVectors) {
  EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

// corpus/cwmp/connreq-http-digest-exchange-handwritten.txt: the worked
// example of the protocol brief, recomputed from its Authorization header.
TEST(Corpus, HandwrittenDigestExchange) {
  const std::string text = read_file(std::string(LUACS_SHARED_DIR) +
                                     "/corpus/cwmp/connreq-http-digest-exchange-handwritten.txt");
  ASSERT_FALSE(text.empty());
  const auto p = parse_digest(header_value(text, "Authorization"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->username, "cpe-cr-user");
  EXPECT_EQ(p->realm, "IGD Authentication");
  EXPECT_EQ(p->opaque, "5ccc069c403ebaf9");
  const std::string ha1 = md5_hex(p->username + ":" + p->realm + ":cr-secret");
  const std::string ha2 = md5_hex("GET:" + p->uri);
  EXPECT_EQ(ha1, "01cfdc13657e648494d266975efea98f");
  EXPECT_EQ(ha2, "d1336c2742486022c7d2fb742ba28b92");
  EXPECT_EQ(
      md5_hex(ha1 + ":" + p->nonce + ":" + p->nc + ":" + p->cnonce + ":" + p->qop + ":" + ha2),
      "242adef27a79662b4a93ccc1a9d229d3");
  EXPECT_EQ(p->response, "242adef27a79662b4a93ccc1a9d229d3");
}

// corpus/cwmp/http-acs-response-401-digest-challenge.http (GenieACS): our
// parameter parser reads its comma-without-space challenge, and ours has the
// same shape.
TEST(Corpus, ChallengeFormat) {
  const std::string text = read_file(std::string(LUACS_SHARED_DIR) +
                                     "/corpus/cwmp/http-acs-response-401-digest-challenge.http");
  const auto theirs = parse_digest(header_value(text, "WWW-Authenticate"));
  ASSERT_TRUE(theirs);
  EXPECT_EQ(theirs->realm, "GenieACS");
  EXPECT_EQ(theirs->qop, "auth,auth-int");
  EXPECT_EQ(theirs->nonce.size(), 32u);

  Authenticator a(digest_config());
  const auto ours = a.challenges(false, false, kT0);
  ASSERT_EQ(ours.size(), 1u);
  const std::string head = "Digest realm=\"luacs\", qop=\"auth\", nonce=\"";
  const std::string tail = "\", algorithm=MD5";
  // 32 characters, as GenieACS's: some CPEs keep the nonce in a 32-byte
  // buffer and cut a longer one.
  ASSERT_EQ(ours[0].size(), head.size() + 32 + tail.size()) << ours[0];
  EXPECT_EQ(ours[0].substr(0, head.size()), head);
  EXPECT_EQ(ours[0].substr(head.size() + 32), tail);
  EXPECT_EQ(ours[0].substr(head.size(), 32).find_first_not_of("0123456789abcdef"),
            std::string::npos);
  const auto parsed = parse_digest(ours[0]);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->realm, "luacs");
  EXPECT_EQ(parsed->qop, "auth");
}

// ---- nonces ----------------------------------------------------------------

TEST(NonceTable, IssueVerifyAge) {
  NonceTable t(300s);
  const std::string n1 = t.issue(kT0), n2 = t.issue(kT0);
  EXPECT_NE(n1, n2) << "two nonces in the same millisecond must differ";
  EXPECT_EQ(n1.size(), 32u);
  EXPECT_EQ(t.verify(n1, kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.verify(n1, kT0 + 300s), NonceTable::Check::kValid);
  EXPECT_EQ(t.verify(n1, kT0 + 301s), NonceTable::Check::kStale);
  EXPECT_EQ(t.verify(n1, kT0 - 10s), NonceTable::Check::kValid) << "small clock step back";
  EXPECT_EQ(t.verify(n1, kT0 - 301s), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.tracked(), 0u) << "verify records nothing";
}

TEST(NonceTable, ForgedNonces) {
  NonceTable t(300s), other(300s);
  const std::string n = t.issue(kT0);
  for (size_t i : {size_t{0}, size_t{10}, size_t{20}, size_t{31}}) {
    std::string f = n;
    f[i] = f[i] == '0' ? '1' : '0';
    EXPECT_EQ(t.verify(f, kT0), NonceTable::Check::kInvalid) << i;
  }
  EXPECT_EQ(t.verify(n.substr(0, 31), kT0), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.verify(n + "0", kT0), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.verify("", kT0), NonceTable::Check::kInvalid);
  std::string upper = n;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(t.verify(upper, kT0), NonceTable::Check::kValid) << "hex case is not part of the MAC";
  EXPECT_EQ(other.verify(n, kT0), NonceTable::Check::kInvalid) << "another process's secret";
}

TEST(NonceTable, NonceCountMustIncrease) {
  NonceTable t(300s);
  const std::string n = t.issue(kT0);
  EXPECT_EQ(t.check(n, "00000001", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(n, "00000001", kT0), NonceTable::Check::kReplay);
  EXPECT_EQ(t.check(n, "00000003", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(n, "00000002", kT0), NonceTable::Check::kReplay);
  EXPECT_EQ(t.check(n, "0000000A", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(n, "a", kT0), NonceTable::Check::kReplay);
  EXPECT_EQ(t.check(n, "00000000", kT0), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.check(n, "xyz", kT0), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.check(n, "000000001", kT0), NonceTable::Check::kInvalid);
  EXPECT_EQ(t.check(n, "ffffffff", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(n, "ffffffff", kT0), NonceTable::Check::kReplay);
  // Another nonce has its own count.
  const std::string m = t.issue(kT0);
  EXPECT_EQ(t.check(m, "00000001", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(m, "00000001", kT0 + 301s), NonceTable::Check::kStale);
}

TEST(NonceTable, LegacyFormUsesTheNonceUp) {
  NonceTable t(300s);
  const std::string n = t.issue(kT0);
  EXPECT_EQ(t.check(n, "", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(n, "", kT0), NonceTable::Check::kReplay);
  EXPECT_EQ(t.check(n, "00000001", kT0), NonceTable::Check::kReplay);
  const std::string m = t.issue(kT0);
  EXPECT_EQ(t.check(m, "00000001", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.check(m, "", kT0), NonceTable::Check::kReplay);
}

TEST(NonceTable, EntriesExpireWithTheirNonce) {
  NonceTable t(10s);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(t.check(t.issue(kT0), "1", kT0), NonceTable::Check::kValid);
  EXPECT_EQ(t.tracked(), 100u);
  // Sweeps happen as shards are touched; touch every shard well after expiry.
  const auto later = kT0 + 60s;
  for (int i = 0; i < 64 * 8; ++i) t.check(t.issue(later), "1", later);
  EXPECT_EQ(t.tracked(), 64u * 8u);
}

// ---- the authenticator -----------------------------------------------------

TEST(Authenticator, DisabledLetsEverythingIn) {
  config::Config cfg;
  Authenticator a(cfg);
  EXPECT_FALSE(a.enabled());
  EXPECT_EQ(a.check("POST", "/", "", false, kT0).verdict, Verdict::kOk);
  EXPECT_TRUE(a.challenges(false, false, kT0).empty());
}

TEST(Authenticator, DigestFlow) {
  Authenticator a(digest_config());
  ASSERT_TRUE(a.enabled());
  EXPECT_EQ(a.check("POST", "/", "", false, kT0).verdict, Verdict::kMissing);
  EXPECT_EQ(a.check("POST", "/", "  ", false, kT0).verdict, Verdict::kMissing);

  Client c;
  const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  auto r = a.check("POST", "/", c.header(nonce), false, kT0 + 1s);
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.username, "cpe");
  EXPECT_EQ(r.device_id, "");
  // The next request of the session, same nonce, next nc.
  EXPECT_EQ(a.check("POST", "/", c.header(nonce, "00000002"), false, kT0 + 2s).verdict,
            Verdict::kOk);
  EXPECT_EQ(r.method, Method::kDigest);
  // Replayed as is: not taken, but the password was right, so the CPE is
  // asked to retry on a fresh nonce (stale=true) rather than failed.
  r = a.check("POST", "/", c.header(nonce, "00000002"), false, kT0 + 3s);
  EXPECT_EQ(r.verdict, Verdict::kStale);
  EXPECT_EQ(r.username, "cpe");
  EXPECT_EQ(r.reason, "nonce-count already seen");
  // A replay with the wrong password is a failure.
  Client wrong;
  wrong.password = "nope";
  r = a.check("POST", "/", wrong.header(nonce, "00000002"), false, kT0 + 3s);
  EXPECT_EQ(r.verdict, Verdict::kFailed);
  EXPECT_EQ(r.username, "cpe") << "the claimed name, for the failure log";
  EXPECT_EQ(r.reason, "wrong password");
}

// A CPE that starts its next session with the previous session's nonce and
// nc=00000001 (seen in the field): a stale challenge, never a failure, and
// the fresh nonce it then gets works.
TEST(Authenticator, LastSessionsNonceReusedWithNcOneIsStale) {
  Authenticator a(digest_config());
  Client c;
  const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  ASSERT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kOk);
  ASSERT_EQ(a.check("POST", "/", c.header(nonce, "00000002"), false, kT0).verdict, Verdict::kOk);
  for (int session = 0; session < 3; ++session) {
    const auto r = a.check("POST", "/", c.header(nonce, "00000001"), false, kT0 + 30s);
    EXPECT_EQ(r.verdict, Verdict::kStale);
  }
  const std::string fresh = nonce_of(a.challenges(true, false, kT0 + 30s).at(0));
  EXPECT_EQ(a.check("POST", "/", c.header(fresh), false, kT0 + 30s).verdict, Verdict::kOk);
}

TEST(Authenticator, WrongPasswordUserRealmUri) {
  Authenticator a(digest_config());
  const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  Client c;
  c.password = "wrong";
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kFailed);
  c = Client{};
  c.user = "nobody";
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kFailed);
  c = Client{};
  c.realm = "other";
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kFailed);
  c = Client{};
  c.uri = "/other";
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kFailed);
  c = Client{};
  EXPECT_EQ(a.check("GET", "/", c.header(nonce), false, kT0).verdict, Verdict::kFailed)
      << "method is part of HA2";
  // None of the failures used the nonce up.
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kOk);
}

TEST(Authenticator, UriForms) {
  Authenticator a(digest_config());
  Client c;
  auto ok = [&](const std::string& digest_uri, const std::string& target) {
    c.uri = digest_uri;
    const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
    return a.check("POST", target, c.header(nonce), false, kT0).verdict == Verdict::kOk;
  };
  EXPECT_TRUE(ok("/acs", "/acs"));
  EXPECT_TRUE(ok("http://acs.example.net:7547/acs", "/acs"));
  EXPECT_TRUE(ok("HTTPS://acs.example.net/acs?id=1", "/acs"));
  EXPECT_TRUE(ok("/acs", "/acs?id=1"));
  EXPECT_TRUE(ok("http://acs.example.net:7547", "/"));
  EXPECT_TRUE(ok("/", "/"));
  EXPECT_FALSE(ok("/", "/acs"));
  EXPECT_FALSE(ok("/acs/x", "/acs"));
  EXPECT_FALSE(ok("http://acs.example.net/other", "/acs"));
}

TEST(Authenticator, ExpiredNonceIsStaleOnlyWithTheRightPassword) {
  auto cfg = digest_config();
  cfg.nonce_lifetime = 60s;
  Authenticator a(cfg);
  const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  Client c;
  const auto r = a.check("POST", "/", c.header(nonce), false, kT0 + 61s);
  EXPECT_EQ(r.verdict, Verdict::kStale);
  c.password = "wrong";
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0 + 61s).verdict, Verdict::kFailed);
  // The re-challenge carries stale=true and a fresh nonce that works.
  const auto ch = a.challenges(true, false, kT0 + 61s);
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_NE(ch[0].find(", stale=true"), std::string::npos);
  c = Client{};
  EXPECT_EQ(a.check("POST", "/", c.header(nonce_of(ch[0])), false, kT0 + 62s).verdict,
            Verdict::kOk);
}

TEST(Authenticator, ForgedOrForeignNonce) {
  // With the right password, a nonce that is not ours (another process, or
  // one from before a restart) is stale: the CPE retries on a fresh one.
  // With a wrong password it is a failure. Neither is ever accepted.
  Authenticator a(digest_config()), b(digest_config());
  Client c, wrong;
  wrong.password = "nope";
  std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  EXPECT_EQ(b.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kStale);
  EXPECT_EQ(b.check("POST", "/", c.header(nonce), false, kT0).reason, "nonce not issued here");
  EXPECT_EQ(b.check("POST", "/", wrong.header(nonce), false, kT0).verdict, Verdict::kFailed);
  nonce[5] = nonce[5] == 'a' ? 'b' : 'a';
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kStale);
  EXPECT_EQ(a.check("POST", "/", wrong.header(nonce), false, kT0).verdict, Verdict::kFailed);
  EXPECT_EQ(a.check("POST", "/", c.header("MTcwMDAwMDAwMDo0YTdmMGUx"), false, kT0).verdict,
            Verdict::kStale);
  EXPECT_EQ(a.check("POST", "/", wrong.header("MTcwMDAwMDAwMDo0YTdmMGUx"), false, kT0).verdict,
            Verdict::kFailed);
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).method, Method::kDigest);
}

TEST(Authenticator, ProtocolVariants) {
  Authenticator a(digest_config());
  auto verdict = [&](const Client& c) {
    const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
    return a.check("POST", "/", c.header(nonce), false, kT0).verdict;
  };
  Client c;
  c.algorithm = "";  // absent = MD5
  EXPECT_EQ(verdict(c), Verdict::kOk);
  c.algorithm = "md5";
  EXPECT_EQ(verdict(c), Verdict::kOk);
  c.algorithm = "MD5-sess";
  EXPECT_EQ(verdict(c), Verdict::kFailed);
  c.algorithm = "SHA-256";
  EXPECT_EQ(verdict(c), Verdict::kFailed);
  c = Client{};
  c.qop = "auth-int";  // body hashing is not implemented: refused
  EXPECT_EQ(verdict(c), Verdict::kFailed);
  c.qop = "";  // RFC 2069: accepted, once per nonce
  const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).method, Method::kDigestRfc2069);
  EXPECT_EQ(a.check("POST", "/", c.header(nonce), false, kT0).verdict, Verdict::kStale)
      << "used up: the CPE is asked for a fresh one";
  // qop=auth without cnonce, upper-case response hex, garbage header.
  c = Client{};
  const std::string n2 = nonce_of(a.challenges(false, false, kT0).at(0));
  std::string h = c.header(n2);
  std::string no_cnonce = h;
  const auto cn = no_cnonce.find(", cnonce=\"");
  ASSERT_NE(cn, std::string::npos);
  no_cnonce.erase(cn, no_cnonce.find('"', cn + 10) + 1 - cn);
  ASSERT_EQ(no_cnonce.find("cnonce"), std::string::npos);
  EXPECT_EQ(a.check("POST", "/", no_cnonce, false, kT0).verdict, Verdict::kFailed);
  std::string upper = h;
  const auto at = upper.find("response=\"") + 10;
  for (size_t i = at; i < at + 32; ++i)
    upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  EXPECT_EQ(a.check("POST", "/", upper, false, kT0).verdict, Verdict::kOk);
  EXPECT_EQ(a.check("POST", "/", "Digest username=\"cpe", false, kT0).verdict, Verdict::kFailed);
  EXPECT_EQ(a.check("POST", "/", "Negotiate abc", false, kT0).verdict, Verdict::kOtherScheme)
      << "a scheme we do not take is answered with the challenge, not counted";
}

TEST(Authenticator, BasicOnlyWhereAllowed) {
  const std::string good = "Basic Y3BlOnNlY3JldA==";  // cpe:secret
  const std::string bad = "Basic Y3BlOndyb25n";       // cpe:wrong
  {
    Authenticator a(digest_config());
    // Basic off: some CPEs try it first; they get the Digest challenge, and
    // it is not counted as a failed login, with a right or a wrong password.
    // Off means off inside TLS too: only the operator turns it on.
    for (const bool tls : {false, true}) {
      EXPECT_EQ(a.check("POST", "/", good, tls, kT0).verdict, Verdict::kOtherScheme);
      EXPECT_EQ(a.check("POST", "/", bad, tls, kT0).verdict, Verdict::kOtherScheme);
      EXPECT_EQ(a.challenges(false, tls, kT0).size(), 1u);
    }
  }
  {
    auto cfg = digest_config();
    cfg.allow_basic = config::BasicAuth::kTls;
    Authenticator a(cfg);
    EXPECT_EQ(a.check("POST", "/", good, false, kT0).verdict, Verdict::kOtherScheme);
    const auto r = a.check("POST", "/", good, true, kT0);
    EXPECT_EQ(r.verdict, Verdict::kOk);
    EXPECT_EQ(r.method, Method::kBasic);
    EXPECT_EQ(r.username, "cpe");
    EXPECT_EQ(a.check("POST", "/", bad, true, kT0).verdict, Verdict::kFailed);
    EXPECT_EQ(a.challenges(false, false, kT0).size(), 1u);
    const auto tls = a.challenges(false, true, kT0);
    ASSERT_EQ(tls.size(), 2u);
    EXPECT_EQ(tls[1], "Basic realm=\"luacs\"");
  }
  {
    auto cfg = digest_config();
    cfg.allow_basic = config::BasicAuth::kAlways;
    Authenticator a(cfg);
    EXPECT_EQ(a.check("POST", "/", good, false, kT0).verdict, Verdict::kOk);
    EXPECT_EQ(a.check("POST", "/", bad, false, kT0).verdict, Verdict::kFailed);
    EXPECT_EQ(a.check("POST", "/", "Basic !!", false, kT0).verdict, Verdict::kFailed);
    const auto ch = a.challenges(false, false, kT0);
    ASSERT_EQ(ch.size(), 2u);
    EXPECT_EQ(ch[0].rfind("Digest ", 0), 0u);
    EXPECT_EQ(ch[1], "Basic realm=\"luacs\"");
  }
}

TEST(Authenticator, PerDeviceCredentials) {
  Authenticator a(digest_config());
  auto login = [&](const std::string& user, const std::string& pass) {
    Client c;
    c.user = user;
    c.password = pass;
    const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
    return a.check("POST", "/", c.header(nonce), false, kT0);
  };
  auto r = login("dev", "devpass");
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.device_id, "00E04C-W5%2D2100G-D8365F659C6E");
  // One username, two devices, told apart by the password.
  r = login("shared", "pw-b");
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.device_id, "B-B");
  r = login("shared", "pw-a");
  EXPECT_EQ(r.device_id, "A-A");
  EXPECT_EQ(login("shared", "secret").verdict, Verdict::kFailed);
  EXPECT_EQ(login("dev", "secret").verdict, Verdict::kFailed);
}

TEST(Authenticator, RealmIsQuotedInChallenges) {
  auto cfg = digest_config();
  cfg.realm = "my \"acs\"";  // config refuses this; the authenticator still quotes it
  cfg.allow_basic = config::BasicAuth::kTls;
  Authenticator a(cfg);
  const auto ch = a.challenges(false, true, kT0);
  EXPECT_EQ(ch.at(0).rfind("Digest realm=\"my \\\"acs\\\"\", ", 0), 0u) << ch[0];
  EXPECT_EQ(ch.at(1), "Basic realm=\"my \\\"acs\\\"\"");
  EXPECT_EQ(parse_digest(ch[0])->realm, cfg.realm);
}

TEST(Authenticator, ConcurrentChecks) {
  Authenticator a(digest_config());
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client c;
      if (t % 2) {
        c.user = "dev";
        c.password = "devpass";
      }
      for (int i = 0; i < kPerThread; ++i) {
        const std::string nonce = nonce_of(a.challenges(false, false, kT0).at(0));
        if (a.check("POST", "/", c.header(nonce), false, kT0).verdict == Verdict::kOk) ++ok;
        if (a.check("POST", "/", c.header(nonce, "00000002"), false, kT0).verdict == Verdict::kOk)
          ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread * 2);

  // The same (nonce, nc) raced from every thread is accepted exactly once.
  for (int round = 0; round < 20; ++round) {
    Client c;
    const std::string header = c.header(nonce_of(a.challenges(false, false, kT0).at(0)));
    std::atomic<int> accepted{0};
    std::atomic<bool> go{false};
    threads.clear();
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        if (a.check("POST", "/", header, false, kT0).verdict == Verdict::kOk) ++accepted;
      });
    }
    go = true;
    for (auto& th : threads) th.join();
    EXPECT_EQ(accepted.load(), 1) << "round " << round;
  }
}

}  // namespace
}  // namespace luacs::auth
