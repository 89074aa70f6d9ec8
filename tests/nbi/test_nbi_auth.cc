// The API is closed by default: tokens, roles, scopes, the slow-down of
// guessing, and what never reaches the log. Real binary, real PostgreSQL.
#include <gtest/gtest.h>

#include "core/nbi/auth.h"
#include "support/api_fixture.h"

using namespace luacs;
using namespace std::chrono_literals;
using test::ApiServer;

TEST(TokenText, ParsesOnlyItsOwnShape) {
  const std::string secret(64, 'a');
  const auto t = nbi::parse_token(nbi::token_text(42, secret));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->id, 42);
  EXPECT_EQ(t->secret, secret);
  EXPECT_FALSE(nbi::parse_token("lcs_42_" + std::string(63, 'a')));
  EXPECT_FALSE(nbi::parse_token("lcs_42_" + std::string(64, 'A')));
  EXPECT_FALSE(nbi::parse_token("lcs_x_" + secret));
  EXPECT_FALSE(nbi::parse_token("lcs_-1_" + secret));
  EXPECT_FALSE(nbi::parse_token("abc_1_" + secret));
  EXPECT_FALSE(nbi::parse_token(""));
  EXPECT_TRUE(nbi::secret_matches(nbi::hash_secret(secret), secret));
  EXPECT_FALSE(nbi::secret_matches(nbi::hash_secret(secret), std::string(64, 'b')));
  EXPECT_EQ(nbi::bearer_of("Bearer abc"), "abc");
  EXPECT_EQ(nbi::bearer_of("bearer  abc "), "abc");
  EXPECT_EQ(nbi::bearer_of("Basic abc"), "");
}

TEST(Throttle, SlowsAnAddressAfterRepeatedFailuresAndForgivesOnSuccess) {
  nbi::Throttle t;
  const auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < nbi::Throttle::kFree - 1; ++i) t.failed("192.0.2.1", now);
  EXPECT_EQ(t.delay("192.0.2.1", now).count(), 0);
  t.failed("192.0.2.1", now);
  EXPECT_EQ(t.delay("192.0.2.1", now).count(), 250);
  t.failed("192.0.2.1", now);
  EXPECT_EQ(t.delay("192.0.2.1", now).count(), 500);
  for (int i = 0; i < 20; ++i) t.failed("192.0.2.1", now);
  EXPECT_EQ(t.delay("192.0.2.1", now), nbi::Throttle::kMaxDelay);
  EXPECT_EQ(t.delay("192.0.2.2", now).count(), 0);  // another address is not slowed
  EXPECT_EQ(t.delay("192.0.2.1", now + nbi::Throttle::kWindow + 1s).count(), 0);
  t.succeeded("192.0.2.1");
  EXPECT_EQ(t.delay("192.0.2.1", now).count(), 0);
}

TEST(ApiAuth, OpenRoutesNeedNoTokenAndEveryOtherDoes) {
  ApiServer api("nbiauth");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  EXPECT_EQ(api.call("", "GET", "/healthz").status, 200);
  EXPECT_EQ(api.call("", "GET", "/readyz").status, 200) << api.luacs().log();
  EXPECT_EQ(api.call("", "GET", "/openapi.json").status, 200);

  const auto none = api.call("", "GET", "/policy");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"luacs\"");
  EXPECT_EQ(none.json().value("error", ""), "missing token");

  const std::string admin = api.token("ops", "admin");
  const std::string read = api.token("noc", "read");
  ASSERT_FALSE(admin.empty());
  EXPECT_EQ(api.call(read, "GET", "/policy").status, 200);
  const auto r403 = api.call(read, "POST", "/policy/reload");
  EXPECT_EQ(r403.status, 403);
  EXPECT_NE(r403.json().value("detail", "").find("has role read; this needs admin"),
            std::string::npos)
      << r403.body;
  // A token of the right shape with a wrong secret, and an unknown id.
  std::string wrong = admin;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(api.call(wrong, "GET", "/policy").status, 401);
  EXPECT_EQ(api.call("lcs_999_" + std::string(64, 'a'), "GET", "/policy").status, 401);
  EXPECT_EQ(api.call("not-a-token", "GET", "/policy").status, 401);

  // Revoked: refused at once, though the API had it cached (the revoke's
  // NOTIFY reaches the API a moment after the CLI's commit).
  EXPECT_EQ(api.call(read, "GET", "/policy").status, 200);
  EXPECT_EQ(api.cli({"revoke", "noc"}).status, 0);
  int status = 0;
  for (int i = 0; i < 100 && status != 401; ++i) {
    status = api.call(read, "GET", "/policy").status;
    if (status != 401) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(status, 401);
  EXPECT_EQ(api.cli({"revoke", "noc"}).status, 1);

  // No secret in the log, nor in `luacs token list`.
  const std::string secret_part = admin.substr(admin.rfind('_') + 1);
  EXPECT_EQ(api.luacs().log().find(secret_part), std::string::npos);
  const auto list = api.cli({"list"});
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("ops"), std::string::npos);
  EXPECT_EQ(list.out.find(secret_part), std::string::npos);
  // Only the hash is stored.
  EXPECT_EQ(api.pg().value("SELECT count(*) FROM api_tokens WHERE hash LIKE '%' || $1 || '%'",
                           {secret_part}),
            "0");
}

TEST(ApiAuth, ATokenCommandRefusesBadInput) {
  ApiServer api("nbitokcli");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  EXPECT_EQ(api.cli({"add", "x", "--role", "god"}).status, 2);
  EXPECT_EQ(api.cli({"add", "bad name", "--role", "read"}).status, 2);
  EXPECT_EQ(api.cli({"add", "--role", "read"}).status, 2);
  EXPECT_FALSE(api.token("twice", "read").empty());
  const auto again = api.cli({"add", "twice", "--role", "read"});
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.out.find("exists"), std::string::npos) << again.out;
}

TEST(ApiAuth, RepeatedFailuresFromOneAddressAreSlowedDown) {
  ApiServer api("nbithrottle");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const std::string bad = "lcs_1_" + std::string(64, 'f');
  for (int i = 0; i < nbi::Throttle::kFree; ++i)
    EXPECT_EQ(api.call(bad, "GET", "/policy").status, 401);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(api.call(bad, "GET", "/policy").status, 401) << api.luacs().log();
  EXPECT_EQ(api.call(bad, "GET", "/policy").status, 401) << api.luacs().log();
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms + 500ms);
  // Open routes are not slowed.
  EXPECT_EQ(api.call("", "GET", "/healthz").status, 200);
}

TEST(ApiHttp, UnknownRoutesMethodsAndBadPathsGetJsonErrors) {
  ApiServer api("nbihttp");
  ASSERT_TRUE(api.started()) << api.luacs().log();
  const auto nf = api.call("", "GET", "/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.header("Content-Type"), "application/json");
  EXPECT_TRUE(nf.json().contains("detail"));
  const auto na = api.call("", "DELETE", "/healthz");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.header("Allow"), "GET");
  EXPECT_EQ(api.call("", "GET", "/healthz%00").status, 400);
  EXPECT_EQ(api.call("", "GET", "/health%zz").status, 400);
  const std::string admin = api.token("ops", "admin");
  // A body over [nbi] max_body: 413 before it is read.
  const auto big = api.call(admin, "POST", "/policy/check", std::string(2 << 20, ' '));
  EXPECT_EQ(big.status, 413);
  const auto bad = api.call(admin, "POST", "/policy/check", "{\"dir\": ");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json().value("detail", "").find("at byte"), std::string::npos) << bad.body;
  const auto unknown = api.call(admin, "POST", "/policy/check", "{\"folder\": \"x\"}");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.json().value("detail", "").find("'folder'"), std::string::npos);
}
