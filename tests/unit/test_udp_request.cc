#include "core/connreq/udp_request.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace luacs::connreq {
namespace {

using V = UdpRequestVerifier::Verdict;

// The datagram between the marker lines of the corpus file, with CRLF line
// ends whatever the file has.
std::string corpus_datagram() {
  std::ifstream in(std::string(LUACS_SHARED_DIR) +
                   "/corpus/cwmp/connreq-udp-tr111-signed-handwritten.txt");
  EXPECT_TRUE(in) << "corpus file missing";
  std::string line, out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "-----BEGIN DATAGRAM-----") {
      inside = true;
    } else if (line == "-----END DATAGRAM-----") {
      break;
    } else if (inside) {
      out += line + "\r\n";
    }
  }
  return out;
}

UdpRequest worked_example() {
  UdpRequest r;
  r.host = "198.51.100.7";
  r.port = 30005;
  r.ts = 1714557600;
  r.id = "3044239881";
  r.username = "cpe-cr-user";
  r.cnonce = "6c4a9f0e2b7d1358";
  return r;
}

TEST(UdpRequest, WorkedExampleSignature) {
  EXPECT_EQ(udp_request_signature("cr-secret", 1714557600, "3044239881", "cpe-cr-user",
                                  "6c4a9f0e2b7d1358"),
            "11d9c106d9235cd6a5cef309631a320db73c9aca");
}

TEST(UdpRequest, FormatsTheCorpusDatagramByteForByte) {
  const std::string expected = corpus_datagram();
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(format_udp_request(worked_example(), "cr-secret"), expected);
}

TEST(UdpRequest, ParsesTheCorpusDatagram) {
  const auto r = parse_udp_request(corpus_datagram());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->host, "198.51.100.7");
  EXPECT_EQ(r->port, 30005);
  EXPECT_EQ(r->ts, 1714557600u);
  EXPECT_EQ(r->id, "3044239881");
  EXPECT_EQ(r->username, "cpe-cr-user");
  EXPECT_EQ(r->cnonce, "6c4a9f0e2b7d1358");
  EXPECT_EQ(r->signature, "11d9c106d9235cd6a5cef309631a320db73c9aca");
}

TEST(UdpRequest, VerifierAcceptsOnceAndRefusesRepeats) {
  UdpRequestVerifier cpe("cpe-cr-user", "cr-secret");
  const std::string d = corpus_datagram();
  EXPECT_EQ(cpe.check(d), V::kAccepted);
  ASSERT_TRUE(cpe.last());
  EXPECT_EQ(cpe.last()->id, "3044239881");
  EXPECT_EQ(cpe.check(d), V::kReplayed);  // a retransmission

  UdpRequest next = worked_example();
  next.id = "3044239882";  // a new request in the same second
  EXPECT_EQ(cpe.check(format_udp_request(next, "cr-secret")), V::kAccepted);
  UdpRequest old = worked_example();
  old.ts -= 1;
  old.id = "1";
  EXPECT_EQ(cpe.check(format_udp_request(old, "cr-secret")), V::kStale);
}

TEST(UdpRequest, VerifierRefusesWrongUserAndKey) {
  UdpRequestVerifier cpe("cpe-cr-user", "cr-secret");
  UdpRequest r = worked_example();
  EXPECT_EQ(cpe.check(format_udp_request(r, "other-secret")), V::kBadSignature);
  r.username = "someone-else";
  EXPECT_EQ(cpe.check(format_udp_request(r, "cr-secret")), V::kWrongUser);
  // A signature in upper case still verifies (compared case-insensitively).
  std::string d = corpus_datagram();
  const auto at = d.find("sig=") + 4;
  for (size_t i = at; i < at + 40; ++i) d[i] = static_cast<char>(std::toupper(d[i]));
  EXPECT_EQ(cpe.check(d), V::kAccepted);
  // Any change to a signed value breaks the signature.
  UdpRequestVerifier cpe2("cpe-cr-user", "cr-secret");
  std::string tampered = corpus_datagram();
  tampered.replace(tampered.find("cn=6c4a"), 7, "cn=7c4a");
  EXPECT_EQ(cpe2.check(tampered), V::kBadSignature);
}

TEST(UdpRequest, SpecialCharactersAreEncodedAndSigned) {
  UdpRequest r = worked_example();
  r.host = "[2001:db8::7]";
  r.username = "user name&x=1";
  const std::string d = format_udp_request(r, "pw");
  EXPECT_NE(d.find("un=user%20name%26x%3D1&"), std::string::npos);
  EXPECT_NE(d.find("Host: [2001:db8::7]:30005\r\n"), std::string::npos);
  UdpRequestVerifier cpe("user name&x=1", "pw");
  EXPECT_EQ(cpe.check(d), V::kAccepted);
  EXPECT_EQ(cpe.last()->host, "[2001:db8::7]");
}

TEST(UdpRequest, MalformedDatagramsRefused) {
  const std::string good = corpus_datagram();
  auto without = [&](std::string_view what) {
    std::string d = good;
    d.erase(d.find(what), what.size());
    return d;
  };
  UdpRequestVerifier cpe("cpe-cr-user", "cr-secret");
  for (const std::string& d : {
           std::string(),
           std::string("garbage"),
           std::string("POST") + good.substr(3),
           without("&cn=6c4a9f0e2b7d1358"),
           without("ts=1714557600&"),
           without(" HTTP/1.1"),
           without("Host: 198.51.100.7:30005\r\n"),
           without("sig=11"),  // 38 hex digits
           good.substr(0, good.find("\r\n")) + std::string(3000, 'x'),
       }) {
    EXPECT_FALSE(parse_udp_request(d)) << d;
    EXPECT_EQ(cpe.check(d), V::kMalformed) << d;
  }
  std::string twice = good;
  twice.insert(twice.find("&sig"), "&id=1");
  EXPECT_FALSE(parse_udp_request(twice));
  std::string letters = good;
  letters.replace(letters.find("ts=1"), 4, "ts=x");
  EXPECT_FALSE(parse_udp_request(letters));
}

}  // namespace
}  // namespace luacs::connreq
