// Loose Cookie parsing (as CPEs send it) and the Set-Cookie value we send.
#include "core/http/cookie.h"

#include <gtest/gtest.h>

namespace luacs::http {
namespace {

TEST(HttpCookie, ThomsonRfc2965Form) {
  const std::string_view h = "$Version=\"0\"; ID=218_THOM_TR69_ID;$Path=/";
  EXPECT_EQ(find_cookie(h, "ID"), "218_THOM_TR69_ID");
  // Attributes are not cookies.
  EXPECT_EQ(find_cookie(h, "$Version"), "");
  EXPECT_EQ(find_cookie(h, "$Path"), "");
  EXPECT_EQ(find_cookie(h, "Version"), "");
  EXPECT_EQ(find_cookie("$Version=1; session=abc; $Path=\"/acs\"; $Domain=x", "session"), "abc");
}

TEST(HttpCookie, PlainAndSeveral) {
  EXPECT_EQ(find_cookie("session=6b0f4c2e9a7d1e35", "session"), "6b0f4c2e9a7d1e35");
  const std::string_view h = "a=1; session=xyz; b=2";
  EXPECT_EQ(find_cookie(h, "a"), "1");
  EXPECT_EQ(find_cookie(h, "session"), "xyz");
  EXPECT_EQ(find_cookie(h, "b"), "2");
}

TEST(HttpCookie, CommaSeparators) {
  const std::string_view h = "a=1, session=xyz,b=2";
  EXPECT_EQ(find_cookie(h, "session"), "xyz");
  EXPECT_EQ(find_cookie(h, "b"), "2");
  EXPECT_EQ(find_cookie("a=1;b=2,c=3", "c"), "3");
}

TEST(HttpCookie, QuotesAndWhitespace) {
  EXPECT_EQ(find_cookie("session=\"abc\"", "session"), "abc");
  EXPECT_EQ(find_cookie("  session = \"abc\"  ;x=1", "session"), "abc");
  EXPECT_EQ(find_cookie("\tsession=abc\t", "session"), "abc");
  EXPECT_EQ(find_cookie("session=\"\"", "session"), "");
  EXPECT_EQ(find_cookie("session=\"", "session"), "\"");  // a lone quote is kept
  EXPECT_EQ(find_cookie("session=a=b", "session"), "a=b");
}

TEST(HttpCookie, AbsentAndEdgeCases) {
  EXPECT_EQ(find_cookie("", "session"), "");
  EXPECT_EQ(find_cookie(";;,, ;", "session"), "");
  EXPECT_EQ(find_cookie("sessionX=1; Xsession=2", "session"), "");
  EXPECT_EQ(find_cookie("Session=1", "session"), "");  // names are case-sensitive
  EXPECT_EQ(find_cookie("session", "session"), "");
  EXPECT_EQ(find_cookie("=abc", ""), "");
}

TEST(HttpCookie, FirstMatchWins) {
  EXPECT_EQ(find_cookie("session=first; session=second", "session"), "first");
  EXPECT_EQ(find_cookie("session=; session=second", "session"), "");
}

TEST(HttpCookie, SetCookieValue) {
  EXPECT_EQ(set_cookie_value("session", "abc"), "session=abc; Path=/; HttpOnly");
  EXPECT_EQ(set_cookie_value("ID", "42", "/acs"), "ID=42; Path=/acs; HttpOnly");
  EXPECT_EQ(set_cookie_value("ID", "42", ""), "ID=42; HttpOnly");
  // What we set is what we find again.
  EXPECT_EQ(find_cookie(set_cookie_value("session", "0123abcd"), "session"), "0123abcd");
}

}  // namespace
}  // namespace luacs::http
