// The client side of connection-request authentication.
#include "core/connreq/digest_client.h"

#include <gtest/gtest.h>

using luacs::connreq::authorization;
using luacs::connreq::Challenge;
using luacs::connreq::md5_hex;
using luacs::connreq::parse_challenge;

namespace {
const luacs::connreq::Credentials kCorpus{"cpe-cr-user", "cr-secret"};
}

// /work/shared/corpus/cwmp/connreq-http-digest-exchange-handwritten.txt
TEST(ConnreqDigestClient, AnswersTheCorpusExchange) {
  const auto c = parse_challenge(
      R"(Digest realm="IGD Authentication", qop="auth", nonce="MTcwMDAwMDAwMDo0YTdmMGUx", opaque="5ccc069c403ebaf9")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, Challenge::Scheme::kDigest);
  EXPECT_EQ(c->realm, "IGD Authentication");
  EXPECT_EQ(c->nonce, "MTcwMDAwMDAwMDo0YTdmMGUx");
  EXPECT_EQ(c->opaque, "5ccc069c403ebaf9");
  EXPECT_TRUE(c->qop_auth);
  EXPECT_EQ(md5_hex("cpe-cr-user:IGD Authentication:cr-secret"),
            "01cfdc13657e648494d266975efea98f");
  const auto a = authorization(*c, kCorpus, "GET", "/cr/8a3f2", "0a4f113b9c2d7e61", false);
  ASSERT_TRUE(a);
  EXPECT_EQ(
      *a,
      R"(Digest username="cpe-cr-user", realm="IGD Authentication", nonce="MTcwMDAwMDAwMDo0YTdmMGUx", uri="/cr/8a3f2", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b9c2d7e61", response="242adef27a79662b4a93ccc1a9d229d3", opaque="5ccc069c403ebaf9")");
}

TEST(ConnreqDigestClient, WithoutQopUsesTheRfc2069Form) {
  const auto c = parse_challenge(R"(digest realm="r", nonce="n1")");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->qop_offered);
  const auto a = authorization(*c, {"u", "p"}, "GET", "/cr", "ignored", false);
  ASSERT_TRUE(a);
  const std::string expected = md5_hex(md5_hex("u:r:p") + ":n1:" + md5_hex("GET:/cr"));
  EXPECT_NE(a->find("response=\"" + expected + "\""), std::string::npos) << *a;
  EXPECT_EQ(a->find("qop"), std::string::npos);
  EXPECT_EQ(a->find("cnonce"), std::string::npos);
  EXPECT_EQ(a->find("opaque"), std::string::npos);
}

TEST(ConnreqDigestClient, QopListsAndTokens) {
  auto c = parse_challenge(R"(Digest realm="r", nonce=abc, qop="auth-int, auth", algorithm=MD5)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->nonce, "abc");
  EXPECT_TRUE(c->qop_auth);
  c = parse_challenge(R"(Digest realm="r", nonce="n", qop="auth-int")");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->qop_auth);
  EXPECT_FALSE(authorization(*c, {"u", "p"}, "GET", "/", "c", false));  // only auth-int
}

TEST(ConnreqDigestClient, RefusesWhatItCannotAnswer) {
  EXPECT_FALSE(parse_challenge("Bearer realm=\"x\""));
  EXPECT_FALSE(parse_challenge("Digest realm=\"r\""));         // no nonce
  EXPECT_FALSE(parse_challenge("Digest realm=\"r, nonce=x"));  // unclosed quote
  EXPECT_FALSE(parse_challenge("Digest realm"));
  const auto sha = parse_challenge(R"(Digest realm="r", nonce="n", algorithm=SHA-256)");
  ASSERT_TRUE(sha);
  EXPECT_FALSE(authorization(*sha, {"u", "p"}, "GET", "/", "c", true));
  const auto sess = parse_challenge(R"(Digest realm="r", nonce="n", algorithm=MD5-sess)");
  ASSERT_TRUE(sess);
  EXPECT_FALSE(authorization(*sess, {"u", "p"}, "GET", "/", "c", true));
}

TEST(ConnreqDigestClient, BasicOnlyWhenAllowed) {
  const auto c = parse_challenge(R"(Basic realm="cpe")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, Challenge::Scheme::kBasic);
  EXPECT_FALSE(authorization(*c, {"acs", "secret"}, "GET", "/", "c", false));
  EXPECT_EQ(authorization(*c, {"acs", "secret"}, "GET", "/", "c", true), "Basic YWNzOnNlY3JldA==");
}

TEST(ConnreqDigestClient, EscapesQuotesInParameters) {
  const auto c = parse_challenge(R"(Digest realm="a \"b\"", nonce="n")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->realm, "a \"b\"");
  const auto a = authorization(*c, {"u\"x", "p"}, "GET", "/", "c", false);
  ASSERT_TRUE(a);
  EXPECT_NE(a->find(R"(username="u\"x")"), std::string::npos);
  EXPECT_NE(a->find(R"(realm="a \"b\"")"), std::string::npos);
}
