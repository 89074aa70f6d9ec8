// The web page's logins (core/nbi/login.h) against a clock the test moves:
// a session ends web_session_idle after its last use and web_session_max
// after the login however busy it is, the timer's prune drops what ended,
// and past kMaxSessions the oldest login goes first.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/nbi/login.h"

using namespace std::chrono_literals;
using luacs::nbi::WebSessions;

namespace {

WebSessions::Session at(WebSessions::Clock::time_point t, int64_t token_id = 1) {
  WebSessions::Session s;
  s.token_id = token_id;
  s.csrf = "csrf";
  s.created = s.used = t;
  return s;
}

}  // namespace

TEST(WebSessions, IdleEndsASessionAndUseKeepsItAlive) {
  WebSessions ws(10min, 12h);
  const auto t0 = WebSessions::Clock::now();
  const std::string c = ws.add(at(t0));
  EXPECT_EQ(c.size(), 64u);  // 32 random bytes, hex
  ASSERT_NE(ws.find(c, t0 + 9min), nullptr);
  // Each use moves the idle deadline: 9 + 9 minutes is fine.
  ASSERT_NE(ws.find(c, t0 + 18min), nullptr);
  // Ten minutes and a moment without use: gone, and gone for good.
  EXPECT_EQ(ws.find(c, t0 + 28min + 1ms), nullptr);
  EXPECT_EQ(ws.find(c, t0 + 18min), nullptr);
  EXPECT_EQ(ws.size(), 0u);
  EXPECT_EQ(ws.find("not-a-cookie", t0), nullptr);
}

TEST(WebSessions, MaxEndsABusySessionAtItsLoginAge) {
  WebSessions ws(10min, 1h);
  const auto t0 = WebSessions::Clock::now();
  const std::string c = ws.add(at(t0));
  auto t = t0;
  for (; t < t0 + 1h; t += 5min) ASSERT_NE(ws.find(c, t), nullptr) << (t - t0) / 1min;
  EXPECT_EQ(ws.find(c, t0 + 1h + 1ms), nullptr);
}

TEST(WebSessions, PruneDropsWhatEndedAndKeepsTheRest) {
  WebSessions ws(10min, 12h);
  const auto t0 = WebSessions::Clock::now();
  const std::string old = ws.add(at(t0));
  const std::string fresh = ws.add(at(t0 + 8min));
  ws.prune(t0 + 11min);
  EXPECT_EQ(ws.size(), 1u);
  EXPECT_EQ(ws.find(old, t0 + 11min), nullptr);
  EXPECT_NE(ws.find(fresh, t0 + 11min), nullptr);
  ws.prune(t0 + 22min);
  EXPECT_EQ(ws.size(), 0u);
}

TEST(WebSessions, LogoutAndRevocationEndSessions) {
  WebSessions ws(10min, 12h);
  const auto t0 = WebSessions::Clock::now();
  const std::string a1 = ws.add(at(t0, 1)), a2 = ws.add(at(t0, 1)), b = ws.add(at(t0, 2));
  ws.erase(a1);
  EXPECT_EQ(ws.find(a1, t0), nullptr);
  ws.erase_token(1);
  EXPECT_EQ(ws.find(a2, t0), nullptr);
  EXPECT_NE(ws.find(b, t0), nullptr);
  EXPECT_EQ(ws.size(), 1u);
}

TEST(WebSessions, PastTheCapTheOldestLoginGoesFirst) {
  WebSessions ws(10min, 12h);
  const auto t0 = WebSessions::Clock::now();
  std::vector<std::string> cookies;
  for (size_t i = 0; i < WebSessions::kMaxSessions; ++i) cookies.push_back(ws.add(at(t0)));
  EXPECT_EQ(ws.size(), WebSessions::kMaxSessions);
  // The first login was used since; the cap still goes by login age.
  ASSERT_NE(ws.find(cookies[0], t0 + 1min), nullptr);
  const std::string extra = ws.add(at(t0 + 1min));
  EXPECT_EQ(ws.size(), WebSessions::kMaxSessions);
  EXPECT_EQ(ws.find(cookies[0], t0 + 1min), nullptr);
  EXPECT_NE(ws.find(cookies[1], t0 + 1min), nullptr);
  EXPECT_NE(ws.find(extra, t0 + 1min), nullptr);
}
