// Which ConnectionRequestURLs luacs will contact.
#include "core/connreq/target.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "core/config/config.h"

using luacs::connreq::BadTarget;
using luacs::connreq::parse_url;
using luacs::connreq::Rules;
using luacs::connreq::rules_from;

namespace {

sockaddr_storage addr(const char* host, uint16_t port) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, host, &v6->sin6_addr), 1) << host;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  }
  return ss;
}

std::optional<std::string> refuse(const Rules& r, const char* host, uint16_t port) {
  const auto ss = addr(host, port);
  return r.refuse(reinterpret_cast<const sockaddr*>(&ss));
}

Rules defaults() {
  return rules_from(luacs::config::Config{});
}

}  // namespace

TEST(ConnreqTarget, DefaultsRefuseLoopbackLinkLocalAndZero) {
  const Rules r = defaults();
  EXPECT_EQ(refuse(r, "127.0.0.1", 7547), "address 127.0.0.1 is denied");
  EXPECT_TRUE(refuse(r, "127.8.9.10", 7547));
  EXPECT_TRUE(refuse(r, "::1", 7547));
  EXPECT_TRUE(refuse(r, "::ffff:127.0.0.1", 7547));  // IPv4-mapped loopback
  EXPECT_TRUE(refuse(r, "169.254.1.1", 7547));
  EXPECT_TRUE(refuse(r, "fe80::1", 7547));
  EXPECT_TRUE(refuse(r, "0.0.0.0", 7547));
  EXPECT_TRUE(refuse(r, "::", 7547));
  EXPECT_TRUE(refuse(r, "::ffff:0.0.0.0", 7547));
  EXPECT_EQ(refuse(r, "192.0.2.10", 7547), std::nullopt);
  EXPECT_EQ(refuse(r, "2001:db8::1", 80), std::nullopt);
}

TEST(ConnreqTarget, PortsOutsideTheSetAreRefused) {
  const Rules r = defaults();
  EXPECT_EQ(refuse(r, "192.0.2.10", 22), "port 22 is not allowed");
  EXPECT_TRUE(refuse(r, "192.0.2.10", 443));
  EXPECT_EQ(refuse(r, "192.0.2.10", 1024), std::nullopt);
  EXPECT_EQ(refuse(r, "192.0.2.10", 65535), std::nullopt);
}

TEST(ConnreqTarget, DenyWinsAndAnEmptyAllowAllowsNothing) {
  const auto cfg = luacs::config::parse(
      "[connection_request]\nallow = 10.0.0.0/8\ndeny = 10.1.0.0/16\n", "t.ini");
  const Rules r = rules_from(cfg);
  EXPECT_EQ(refuse(r, "10.2.0.1", 7547), std::nullopt);
  EXPECT_TRUE(refuse(r, "10.1.0.1", 7547));
  EXPECT_TRUE(refuse(r, "192.0.2.10", 7547));  // not in allow
  const Rules none = rules_from(luacs::config::parse("[connection_request]\nallow =\n", "t.ini"));
  EXPECT_TRUE(refuse(none, "192.0.2.10", 7547));
  const Rules loop = rules_from(
      luacs::config::parse("[connection_request]\nallow = 127.0.0.0/8\ndeny =\n", "t.ini"));
  EXPECT_EQ(refuse(loop, "127.0.0.1", 7547), std::nullopt);
}

TEST(ConnreqTarget, ParsesUrls) {
  auto u = parse_url("http://192.0.2.10:7547/cr/8a3f2");
  EXPECT_EQ(u.host, "192.0.2.10");
  EXPECT_TRUE(u.numeric);
  EXPECT_EQ(u.port, 7547);
  EXPECT_EQ(u.target, "/cr/8a3f2");
  EXPECT_EQ(u.host_header, "192.0.2.10:7547");

  u = parse_url("http://[2001:db8::1]:30005/?k=v");
  EXPECT_EQ(u.host, "2001:db8::1");
  EXPECT_EQ(u.port, 30005);
  EXPECT_EQ(u.target, "/?k=v");
  EXPECT_EQ(u.host_header, "[2001:db8::1]:30005");

  u = parse_url("http://cpe-17.example.net");
  EXPECT_FALSE(u.numeric);
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");

  u = parse_url("http://192.0.2.10:7547?id=1");
  EXPECT_EQ(u.target, "/?id=1");
}

TEST(ConnreqTarget, RefusesBadUrls) {
  for (const char* bad :
       {"", "https://192.0.2.10/", "ftp://192.0.2.10/", "http://", "http://:7547/",
        "http://user:pw@192.0.2.10/", "http://192.0.2.10:0/", "http://192.0.2.10:65536/",
        "http://192.0.2.10:/", "http://192.0.2.10:12a/", "http://[2001:db8::1/",
        "http://[nonsense]:80/", "http://a b/", "http://192.0.2.10/cr x",
        "http://192.0.2.10/cr\r\nX-Injected: 1", "http://ex_ample.net/"}) {
    EXPECT_THROW(parse_url(bad), BadTarget) << bad;
  }
  try {
    parse_url("https://192.0.2.10/");
  } catch (const BadTarget& e) {
    EXPECT_STREQ(e.what(), "not an http:// URL");
  }
}
