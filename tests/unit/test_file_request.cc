// What a file request asks for: the /<token>/<name> target, a Range, the
// entity-tag conditions, dates.
#include "core/files/file_request.h"

#include <gtest/gtest.h>

namespace luacs::files {
namespace {

using Kind = RangeAnswer::Kind;

TEST(FileRequest, Targets) {
  auto t = parse_target("/0123456789abcdef/fw-7.14.npk");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "0123456789abcdef");
  EXPECT_EQ(t->name, "fw-7.14.npk");
  t = parse_target("HTTP://acs.example:7567/0123456789abcdef/a.alter?x=/y#z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->name, "a.alter");
  for (const char* bad : {"", "/", "//", "/0123456789abcdef", "/0123456789abcdef/",
                          "/0123456789ABCDEF/a", "/0123456789abcde/a", "/0123456789abcdef0/a",
                          "/0123456789abcdef/a/b", "/0123456789abcdef/..", "/0123456789abcdef/.x",
                          "/0123456789abcdef/%2e%2e", "0123456789abcdef/a", "http://host", "*"}) {
    EXPECT_FALSE(parse_target(bad)) << bad;
  }
}

TEST(FileRequest, Ranges) {
  auto r = parse_range("bytes=0-0", 10);
  EXPECT_EQ(r.kind, Kind::kPartial);
  EXPECT_EQ(r.range.first, 0u);
  EXPECT_EQ(r.range.last, 0u);
  EXPECT_EQ(r.range.length(), 1u);
  r = parse_range(" Bytes=3-5 ", 10);
  EXPECT_EQ(r.kind, Kind::kPartial);
  EXPECT_EQ(r.range.first, 3u);
  EXPECT_EQ(r.range.last, 5u);
  r = parse_range("bytes=9-", 10);
  EXPECT_EQ(r.kind, Kind::kPartial);
  EXPECT_EQ(r.range.first, 9u);
  r = parse_range("bytes=2-99999999999999999999999", 10);
  EXPECT_EQ(r.kind, Kind::kPartial) << "an end past 2^64 is clamped";
  EXPECT_EQ(r.range.last, 9u);
  r = parse_range("bytes=-99999999999999999999999", 10);
  EXPECT_EQ(r.kind, Kind::kPartial);
  EXPECT_EQ(r.range.first, 0u);
  EXPECT_EQ(parse_range("bytes=99999999999999999999999-", 10).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(parse_range("bytes=10-", 10).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 10).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-", 0).kind, Kind::kUnsatisfiable);
  EXPECT_EQ(parse_range("bytes=-5", 0).kind, Kind::kUnsatisfiable);
  for (const char* whole : {"", "bytes", "bytes=", "bytes=-", "bytes=5-4", "bytes=a-b",
                            "bytes=+1-2", "bytes=1-2,3-4", "bytes=0x1-2", "lines=1-2"}) {
    EXPECT_EQ(parse_range(whole, 10).kind, Kind::kWhole) << whole;
  }
}

TEST(FileRequest, EntityTags) {
  const std::string etag = "\"abc\"";
  EXPECT_TRUE(etag_matches("\"abc\"", etag));
  EXPECT_TRUE(etag_matches("W/\"abc\"", etag));
  EXPECT_TRUE(etag_matches("\"x\" , \"abc\"", etag));
  EXPECT_TRUE(etag_matches("*", etag));
  EXPECT_FALSE(etag_matches("", etag));
  EXPECT_FALSE(etag_matches("abc", etag));
  EXPECT_FALSE(etag_matches("\"abcd\"", etag));
  EXPECT_TRUE(if_range_allows("", etag));
  EXPECT_TRUE(if_range_allows(" \"abc\" ", etag));
  EXPECT_FALSE(if_range_allows("W/\"abc\"", etag)) << "If-Range compares strongly";
  EXPECT_FALSE(if_range_allows("Sun, 06 Nov 1994 08:49:37 GMT", etag));
}

TEST(FileRequest, TypesDatesAndLogs) {
  EXPECT_EQ(content_type_for("routeros-7.14-arm.npk"), "application/octet-stream");
  EXPECT_EQ(content_type_for("cpe.ALTER"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("upgrade.json"), "application/json");
  EXPECT_EQ(content_type_for("json"), "application/octet-stream");
  EXPECT_EQ(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(redact_token("0123456789abcdef"), "0123\u2026");
}

}  // namespace
}  // namespace luacs::files
