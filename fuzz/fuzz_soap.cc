// The SOAP reader (core/soap/reader.h) over whole envelopes, and the writer
// (core/soap/writer.h) on what it reads.
//
// Input: kControlBytes steering bytes (the HTTP charset, the limits, where
// the body is cut), then the body. It is read twice: by a fresh Reader in
// one feed(), and by a long-lived Reader (reset between documents, as a
// worker's is) in pieces. Both must agree, except on the one limit that
// depends on the cut by design (max_token_bytes bounds a token left open
// across feed() calls). A message read is written back and must read back
// equal: what the ACS reads it can also say.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/soap/reader.h"
#include "core/soap/writer.h"
#include "fuzz/common.h"

using namespace luacs;
using fuzz::Bytes;
using fuzz::Pieces;

namespace {

constexpr std::string_view kEncodings[] = {"",           "",         "UTF-8",  "utf-8",
                                           "ISO-8859-1", "US-ASCII", "UTF-16", "windows-1252"};

soap::ReaderLimits small_limits() {
  soap::ReaderLimits l;
  l.max_depth = 8;
  l.max_text_bytes = 64;
  l.max_elements = 64;
  l.max_token_bytes = 128;
  l.max_comment_bytes = 16;
  return l;
}

struct Result {
  bool ok = false;
  soap::Envelope env;
  std::string error;
};

Result read(soap::Reader& r, std::string_view enc, std::string_view body, Pieces pieces) {
  Result res;
  r.reset(enc);
  size_t off = 0;
  bool fed = true;
  while (fed && off < body.size()) {
    const size_t n = pieces.next(body.size() - off);
    fed = r.feed(body.data() + off, n);
    off += n;
  }
  res.ok = fed && r.finish(res.env);
  res.error = r.error();
  if (!res.ok) {
    FUZZ_CHECK(!res.error.empty(), "failed without an error");
    soap::Envelope e;
    FUZZ_CHECK(!r.feed("<", 1) && !r.finish(e), "a failed reader went on");
  }
  return res;
}

// The writer keeps the name of a body it does not know a valid ASCII
// element name, by design (writer.cc, element_name()): what reads back.
std::string element_name(std::string_view name) {
  auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  std::string r;
  for (char c : name)
    if (letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.') r += c;
  if (r.empty() || !letter(r[0])) r.insert(0, "X");
  return r;
}

bool cut_dependent(const Result& r) {
  return !r.ok && r.error.starts_with("markup longer than");
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const uint8_t flags = in.byte();
  const uint32_t seed = in.byte() | in.byte() << 8 | in.byte() << 16;
  const std::string_view enc = kEncodings[flags & 7];
  const bool small = flags & 8;
  const std::string_view body = in.rest();

  soap::Reader fresh(small ? small_limits() : soap::ReaderLimits{});
  const Result whole = read(fresh, enc, body, Pieces(0));

  static soap::Reader reused_default;
  static soap::Reader reused_small(small_limits());
  const Result cut = read(small ? reused_small : reused_default, enc, body, Pieces(seed));

  if (!cut_dependent(whole) && !cut_dependent(cut)) {
    FUZZ_CHECK(whole.ok == cut.ok, "one feed: " + (whole.ok ? "ok" : whole.error) +
                                       "; in pieces: " + (cut.ok ? "ok" : cut.error));
    if (whole.ok) FUZZ_CHECK(whole.env == cut.env, "one feed and pieces read different messages");
  }

  // An empty body is the empty POST: nothing to write back.
  if (!whole.ok || std::holds_alternative<soap::Empty>(whole.env.body)) return 0;
  const std::string xml = soap::write(whole.env);
  soap::Envelope back;
  std::string why;
  FUZZ_CHECK(soap::parse(xml, back, &why),
             "the writer's envelope does not read: " + why + "\n" + xml);
  soap::Envelope expected = whole.env;
  if (auto* u = std::get_if<soap::Unknown>(&expected.body)) u->name = element_name(u->name);
  FUZZ_CHECK(back == expected, "the envelope read back differs:\n" + xml);
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  uint32_t seed = 1;
  for (const auto& [name, xml] : fuzz::corpus_files("cwmp", ".xml")) {
    // The 586 KB GetParameterNamesResponse is too big to mutate usefully.
    if (xml.size() > 32 * 1024) continue;
    w.add(fuzz::with_control(0, seed++, xml));
  }
  // The bodies of the raw HTTP requests, with their charset.
  for (const auto& [name, text] : fuzz::corpus_files("cwmp", ".http")) {
    const size_t at = text.find("\n\n") != std::string::npos       ? text.find("\n\n") + 2
                      : text.find("\r\n\r\n") != std::string::npos ? text.find("\r\n\r\n") + 4
                                                                   : text.size();
    if (!text.starts_with("POST") || at >= text.size() ||
        text.find("Transfer-Encoding: chunked") != std::string::npos)
      continue;
    const bool latin1 = text.find("ISO-8859-1") != std::string::npos;
    w.add(fuzz::with_control(latin1 ? 4 : 0, seed++, std::string_view(text).substr(at)));
  }
}

}  // namespace
