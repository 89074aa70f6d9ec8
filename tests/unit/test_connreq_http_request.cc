// One HTTP connection request against a scripted CPE on 127.0.0.1.
#include "core/connreq/http_request.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/config/config.h"
#include "tests/support/fake_cr_cpe.h"

using luacs::connreq::HttpRequest;
using luacs::connreq::Outcome;
using luacs::connreq::RequestSpec;
using luacs::connreq::Result;
using luacs::connreq::Rules;
using luacs::test::FakeCrCpe;
using Reply = FakeCrCpe::Reply;
using namespace std::chrono_literals;

namespace {

Rules loopback_rules() {
  return luacs::connreq::rules_from(
      luacs::config::parse("[connection_request]\nallow = 127.0.0.0/8\ndeny =\n", "t.ini"));
}

// Runs one attempt to completion on a fresh loop (with a resolver when
// `dns`).
Result attempt(const Rules& rules, const std::string& url, bool allow_basic = false,
               const std::string& password = "secret", std::chrono::milliseconds timeout = 2000ms,
               bool dns = false) {
  auto base = luacs::loop::new_base();
  Result out;
  bool done = false;
  RequestSpec spec{url, {"acs", password}, allow_basic, timeout};
  std::unique_ptr<evdns_base, decltype([](evdns_base* d) { evdns_base_free(d, 0); })> resolver;
  if (dns) {
    // /etc/hosts only: tests never ask a real DNS server.
    resolver.reset(evdns_base_new(base.get(), 0));
    evdns_base_load_hosts(resolver.get(), "/etc/hosts");
  }
  auto req = std::make_unique<HttpRequest>(base.get(), resolver.get(), rules, spec, [&](Result r) {
    out = std::move(r);
    done = true;
    event_base_loopbreak(base.get());
  });
  event_base_dispatch(base.get());
  req.reset();
  EXPECT_TRUE(done);
  return out;
}

std::string url_of(const FakeCrCpe& cpe) {
  return "http://127.0.0.1:" + std::to_string(cpe.port()) + "/cr";
}

const char* kDigestQop = R"(Digest realm="cpe", nonce="n0nce", qop="auth", opaque="op")";
const char* kDigestNoQop = R"(Digest realm="cpe", nonce="n0nce")";

// 401 with `challenge` until a correct Digest answer arrives, then 204.
FakeCrCpe::Script digest_cpe(const char* challenge, bool close_after_401 = false) {
  return [challenge, close_after_401](const FakeCrCpe::Request& r, int) -> Reply {
    if (r.authorization.empty()) return FakeCrCpe::challenge(challenge, close_after_401);
    if (FakeCrCpe::digest_ok(r.authorization, "acs", "secret", "cpe", "n0nce", "/cr"))
      return FakeCrCpe::status(204);
    return FakeCrCpe::challenge(challenge);
  };
}

}  // namespace

TEST(ConnreqHttp, DigestWithQopOnTheSameConnection) {
  FakeCrCpe cpe(digest_cpe(kDigestQop));
  const auto r = attempt(loopback_rules(), url_of(cpe));
  EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  EXPECT_EQ(r.http_status, 204);
  const auto reqs = cpe.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].connection, reqs[0].connection);
  EXPECT_NE(reqs[1].authorization.find("qop=auth"), std::string::npos);
  EXPECT_NE(reqs[1].authorization.find("opaque=\"op\""), std::string::npos);
  // Nothing but the request line, Host and (the second time) Authorization.
  EXPECT_EQ(reqs[0].head,
            "GET /cr HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(cpe.port()) + "\r\n\r\n");
}

TEST(ConnreqHttp, DigestWithoutQop) {
  FakeCrCpe cpe(digest_cpe(kDigestNoQop));
  const auto r = attempt(loopback_rules(), url_of(cpe));
  EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  const auto reqs = cpe.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].authorization.find("qop"), std::string::npos);
}

TEST(ConnreqHttp, ReconnectsWhenTheCpeClosesAfterThe401) {
  FakeCrCpe cpe(digest_cpe(kDigestQop, /*close_after_401=*/true));
  const auto r = attempt(loopback_rules(), url_of(cpe));
  EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  const auto reqs = cpe.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[1].connection, reqs[0].connection);
}

TEST(ConnreqHttp, WrongCredentialsFailOnceWithoutRetrying) {
  FakeCrCpe cpe(digest_cpe(kDigestQop));
  const auto r = attempt(loopback_rules(), url_of(cpe), false, "wrong");
  EXPECT_EQ(r.outcome, Outcome::kAuthFailed) << r.detail;
  EXPECT_EQ(r.http_status, 401);
  EXPECT_EQ(cpe.requests().size(), 2u);
}

TEST(ConnreqHttp, BasicOnlyWhenAllowed) {
  const auto script = [](const FakeCrCpe::Request& r, int) -> Reply {
    if (r.authorization == "Basic YWNzOnNlY3JldA==") return FakeCrCpe::status(200);
    return FakeCrCpe::challenge(R"(Basic realm="cpe")");
  };
  {
    FakeCrCpe cpe(script);
    const auto r = attempt(loopback_rules(), url_of(cpe), /*allow_basic=*/false);
    EXPECT_EQ(r.outcome, Outcome::kAuthFailed);
    EXPECT_NE(r.detail.find("allow_basic"), std::string::npos) << r.detail;
    EXPECT_EQ(cpe.requests().size(), 1u);  // the password never went out
  }
  {
    FakeCrCpe cpe(script);
    const auto r = attempt(loopback_rules(), url_of(cpe), /*allow_basic=*/true);
    EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  }
}

TEST(ConnreqHttp, ACpeThatNeverAnswersTimesOut) {
  FakeCrCpe cpe([](const FakeCrCpe::Request&, int) { return Reply{"", false, true}; });
  const auto started = std::chrono::steady_clock::now();
  const auto r = attempt(loopback_rules(), url_of(cpe), false, "secret", 300ms);
  EXPECT_EQ(r.outcome, Outcome::kTimedOut);
  // libevent's timers read CLOCK_MONOTONIC_COARSE (a few ms a tick), so the
  // timeout may fire up to a tick before 300 ms on steady_clock.
  EXPECT_GE(std::chrono::steady_clock::now() - started, 280ms);
}

TEST(ConnreqHttp, DeniedTargetsAreNeverContacted) {
  FakeCrCpe cpe([](const FakeCrCpe::Request&, int) { return FakeCrCpe::status(204); });
  const Rules defaults = luacs::connreq::rules_from(luacs::config::Config{});
  auto r = attempt(defaults, url_of(cpe));
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  EXPECT_EQ(r.detail, "address 127.0.0.1 is denied");
  r = attempt(defaults, "http://169.254.1.1:7547/");
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  r = attempt(defaults, "http://[::ffff:127.0.0.1]:" + std::to_string(cpe.port()) + "/");
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  r = attempt(loopback_rules(), "http://127.0.0.1:22/");
  EXPECT_EQ(r.outcome, Outcome::kDenied);
  EXPECT_EQ(r.detail, "port 22 is not allowed");
  EXPECT_EQ(cpe.connections(), 0);
}

TEST(ConnreqHttp, BadUrlsAndStatuses) {
  EXPECT_EQ(attempt(loopback_rules(), "").outcome, Outcome::kNoUrl);
  EXPECT_EQ(attempt(loopback_rules(), "https://127.0.0.1/").outcome, Outcome::kNoUrl);
  {
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) {
      return FakeCrCpe::status(302, "Location: http://127.0.0.1:22/\r\n");
    });
    const auto r = attempt(loopback_rules(), url_of(cpe));
    EXPECT_EQ(r.outcome, Outcome::kError);
    EXPECT_NE(r.detail.find("redirects are not followed"), std::string::npos);
    EXPECT_EQ(cpe.requests().size(), 1u);
  }
  {
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) { return FakeCrCpe::status(503); });
    EXPECT_EQ(attempt(loopback_rules(), url_of(cpe)).outcome, Outcome::kOffline);
  }
  {
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) {
      return Reply{"SSH-2.0-OpenSSH_9.2\r\n\r\n", true};
    });
    EXPECT_EQ(attempt(loopback_rules(), url_of(cpe)).outcome, Outcome::kError);
  }
  {
    // A head that never ends: cut at 8 KiB, not buffered.
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) {
      return Reply{"HTTP/1.1 200 OK\r\nX: " + std::string(64 << 10, 'a'), false};
    });
    const auto r = attempt(loopback_rules(), url_of(cpe));
    EXPECT_EQ(r.outcome, Outcome::kError);
    EXPECT_EQ(r.detail, "response head over 8 KiB");
  }
}

TEST(ConnreqHttp, AClosedPortIsOffline) {
  uint16_t port = 0;
  {
    FakeCrCpe cpe([](const FakeCrCpe::Request&, int) { return FakeCrCpe::status(204); });
    port = cpe.port();
  }
  const auto r = attempt(loopback_rules(), "http://127.0.0.1:" + std::to_string(port) + "/cr");
  EXPECT_EQ(r.outcome, Outcome::kOffline) << r.detail;
}

TEST(ConnreqHttp, HostNamesAreResolvedThenChecked) {
  FakeCrCpe cpe(digest_cpe(kDigestQop));
  const std::string url = "http://localhost:" + std::to_string(cpe.port()) + "/cr";
  auto r = attempt(loopback_rules(), url, false, "secret", 2000ms, /*dns=*/true);
  EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  const auto reqs = cpe.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[0].head.find("Host: localhost:"), std::string::npos) << reqs[0].head;
  // The name leads to loopback: refused after resolution, nothing sent.
  r = attempt(luacs::connreq::rules_from(luacs::config::Config{}), url, false, "secret", 2000ms,
              true);
  EXPECT_EQ(r.outcome, Outcome::kDenied) << r.detail;
  EXPECT_EQ(cpe.connections(), 1);
  // Without a resolver only numeric hosts are contacted.
  EXPECT_EQ(attempt(loopback_rules(), url).outcome, Outcome::kError);
}

TEST(ConnreqHttp, ALarge401BodyIsNotReadTheAnswerGoesOnANewConnection) {
  FakeCrCpe cpe([](const FakeCrCpe::Request& r, int) -> Reply {
    if (r.authorization.empty())
      return {"HTTP/1.1 401 X\r\nWWW-Authenticate: " + std::string(kDigestQop) +
                  "\r\nContent-Length: 10485760\r\n\r\n" + std::string(64 << 10, 'x'),
              false};
    if (FakeCrCpe::digest_ok(r.authorization, "acs", "secret", "cpe", "n0nce", "/cr"))
      return FakeCrCpe::status(200);
    return FakeCrCpe::status(403);
  });
  const auto r = attempt(loopback_rules(), url_of(cpe));
  EXPECT_EQ(r.outcome, Outcome::kAnswered) << r.detail;
  const auto reqs = cpe.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(reqs[1].connection, reqs[0].connection);
}
