// Response heads: status line, Content-Length always, Connection: close,
// extra headers, bodiless statuses.
#include "core/http/response.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/http/request_parser.h"

namespace luacs::http {
namespace {

TEST(HttpResponse, ReasonPhrases) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(204), "No Content");
  EXPECT_EQ(reason_phrase(401), "Unauthorized");
  EXPECT_EQ(reason_phrase(400), "Bad Request");
  EXPECT_EQ(reason_phrase(405), "Method Not Allowed");
  EXPECT_EQ(reason_phrase(413), "Content Too Large");
  EXPECT_EQ(reason_phrase(415), "Unsupported Media Type");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(501), "Not Implemented");
  EXPECT_EQ(reason_phrase(503), "Service Unavailable");
  EXPECT_EQ(reason_phrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

TEST(HttpResponse, OkWithBody) {
  std::string out;
  append_response(out, 200, "text/xml; charset=\"utf-8\"", {{"Set-Cookie", "session=a"}}, "<x/>",
                  true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 4\r\n"
            "Content-Type: text/xml; charset=\"utf-8\"\r\n"
            "Set-Cookie: session=a\r\n"
            "\r\n"
            "<x/>");
}

TEST(HttpResponse, AppendsAndCloses) {
  std::string out = "previous";
  append_response(out, 503, "", {{"Retry-After", "60"}}, "", false);
  EXPECT_EQ(out,
            "previous"
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "Retry-After: 60\r\n"
            "\r\n");
}

TEST(HttpResponse, NoContentEndsTheSession) {
  std::string out;
  append_response(out, 204, "text/xml", {}, "ignored", true);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
  // Same shape as the corpus example (which adds Server and Connection: close).
  std::ifstream in(std::filesystem::path(LUACS_SHARED_DIR) / "corpus" / "cwmp" /
                       "http-acs-response-204-end-session.http",
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string corpus = ss.str();
  std::string ours;
  append_response(ours, 204, "", {{"Server", "ExampleACS/1.0"}}, "", false);
  auto lines = [](std::string s) {
    std::vector<std::string> v;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t e = s.find("\r\n", pos);
      v.push_back(s.substr(pos, e - pos));
      pos = e + 2;
    }
    std::sort(v.begin() + 1, v.end());
    return v;
  };
  EXPECT_EQ(lines(ours), lines(corpus));
}

TEST(HttpResponse, NotModifiedHasNoBody) {
  std::string out;
  append_response(out, 304, "", {}, "body", true);
  EXPECT_EQ(out, "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpResponse, DigestChallenge) {
  std::string out;
  append_response(out, 401, "",
                  {{"WWW-Authenticate", "Digest realm=\"luacs\",qop=\"auth\",nonce=\"n\""}},
                  "Unauthorized", true);
  EXPECT_EQ(out,
            "HTTP/1.1 401 Unauthorized\r\n"
            "Content-Length: 12\r\n"
            "WWW-Authenticate: Digest realm=\"luacs\",qop=\"auth\",nonce=\"n\"\r\n"
            "\r\n"
            "Unauthorized");
}

TEST(HttpResponse, Http10KeepAliveViaExtraHeader) {
  std::string out;
  append_response(out, 200, "text/xml", {{"Connection", "keep-alive"}}, "", true);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Type: text/xml\r\n"
            "Connection: keep-alive\r\n\r\n");
}

TEST(HttpResponse, ContinueIsJustTheStatusLine) {
  std::string out;
  append_response(out, 100, "text/xml", {}, "x", false);
  EXPECT_EQ(out, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(out, kContinueResponse);
}

TEST(HttpResponse, HeaderValuesCannotSplitTheResponse) {
  std::string out;
  append_response(out, 302, "", {{"Location", "http://a/\r\nSet-Cookie: evil=1\n"}}, "", true);
  EXPECT_EQ(out,
            "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n"
            "Location: http://a/  Set-Cookie: evil=1 \r\n\r\n");
}

TEST(HttpResponse, LargeBodyLength) {
  std::string body(123456, 'x');
  std::string out;
  append_response(out, 200, "", {}, body, true);
  EXPECT_EQ(out.substr(0, 41), "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n");
  EXPECT_EQ(out.size(), 41 + 2 + body.size());
}

}  // namespace
}  // namespace luacs::http
