// The HTTP request parser (core/http/request_parser.h), fed a connection's
// bytes: pipelined requests, chunked and compressed bodies.
//
// Input: kControlBytes steering bytes (limits, sink behaviour, where the
// bytes are cut), then the bytes of the connection. The same bytes go
// through two parsers, one in a single feed() and one in pieces; what they
// make of it (every head, every complete body, the error) must be the same,
// and each must keep its documented contract (consumed counts, limits,
// framing) at every step.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/http/request_parser.h"
#include "fuzz/common.h"

using namespace luacs;
using fuzz::Bytes;
using fuzz::Pieces;
using Event = http::RequestParser::Event;

namespace {

struct Options {
  http::Limits limits;
  // The sink refuses the body past this many bytes (0: never), or, with
  // sink_fails, puts the parser in error itself and says true.
  uint64_t refuse_after = 0;
  bool sink_fails = false;
  uint32_t seed = 0;
};

Options options(Bytes& in) {
  Options o;
  const uint8_t flags = in.byte();
  static constexpr size_t kHead[] = {16 * 1024, 512, 64, 24};
  static constexpr uint64_t kBody[] = {1 << 20, 4096, 100, 0};
  o.limits.max_header_bytes = kHead[flags & 3];
  o.limits.max_body_bytes = kBody[flags >> 2 & 3];
  o.limits.max_headers = flags & 0x10 ? 4 : 100;
  if (flags & 0x20) o.refuse_after = 50;
  o.sink_fails = flags & 0x40;
  o.seed = in.byte() | in.byte() << 8 | in.byte() << 16;
  return o;
}

struct Sink : http::BodySink {
  const Options& opt;
  http::RequestParser& parser;
  std::string body;
  explicit Sink(const Options& o, http::RequestParser& p) : opt(o), parser(p) {}
  bool on_body(const char* data, size_t len) override {
    FUZZ_CHECK(len > 0, "on_body with no bytes");
    body.append(data, len);
    if (opt.refuse_after != 0 && body.size() > opt.refuse_after) {
      if (!opt.sink_fails) return false;
      parser.fail(413, "refused by the sink");
    }
    return true;
  }
};

bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// What the head says, one line of the transcript; checks it on the way.
std::string head_line(const http::Request& r, const http::Limits& limits) {
  FUZZ_CHECK(!r.method.empty(), "empty method");
  for (char c : r.method) FUZZ_CHECK(is_tchar(c), "method " + r.method);
  FUZZ_CHECK(!r.target.empty(), "empty target");
  for (char c : r.target) FUZZ_CHECK(c > 0x20 && c < 0x7f, "target " + r.target);
  FUZZ_CHECK(r.minor_version == 0 || r.minor_version == 1,
             "HTTP/1." + std::to_string(r.minor_version));
  FUZZ_CHECK(r.headers.size() <= limits.max_headers, "more headers than max_headers");
  FUZZ_CHECK(!(r.chunked && r.content_length), "chunked with a Content-Length");
  if (r.minor_version == 0) FUZZ_CHECK(!r.expect_continue, "100-continue on HTTP/1.0");
  std::string s = "H " + r.method + " " + r.target + " 1." + std::to_string(r.minor_version);
  for (const auto& [n, v] : r.headers) {
    FUZZ_CHECK(!n.empty(), "empty header name");
    FUZZ_CHECK(v.empty() || (v.front() != ' ' && v.back() != ' '), "untrimmed value '" + v + "'");
    s += "\n  " + n + ": " + v;
  }
  s += "\n  keep_alive=" + std::to_string(r.keep_alive) + " chunked=" + std::to_string(r.chunked) +
       " length=" + (r.content_length ? std::to_string(*r.content_length) : "-") +
       " coding=" + std::to_string(static_cast<int>(r.coding)) +
       " continue=" + std::to_string(r.expect_continue) + " charset=" + r.charset + "\n";
  return s;
}

// Runs the parser over `data`, cut where `pieces` says; returns the
// transcript: heads, complete bodies, the error, where it stopped.
std::string run(std::string_view data, const Options& opt, Pieces pieces) {
  http::RequestParser parser(opt.limits);
  Sink sink(opt, parser);
  std::string log;
  size_t off = 0, piece_end = 0;
  bool in_body = false;

  // After kMessageComplete: the message checked and logged, the parser
  // reset for the next one.
  auto complete = [&] {
    const http::Request& r = parser.request();
    FUZZ_CHECK(in_body, "message complete without a head");
    FUZZ_CHECK(parser.body_bytes() == sink.body.size(), "body_bytes() is not what the sink got");
    FUZZ_CHECK(sink.body.size() <= opt.limits.max_body_bytes, "body past max_body_bytes");
    if (!r.chunked && !r.content_length) FUZZ_CHECK(sink.body.empty(), "body without framing");
    if (r.content_length && r.coding == http::ContentCoding::kIdentity)
      FUZZ_CHECK(sink.body.size() == *r.content_length, "body is not Content-Length long");
    FUZZ_CHECK(parser.idle(), "not idle after a complete message");
    size_t again = 1;
    FUZZ_CHECK(
        parser.feed(data.data() + off, piece_end - off, &again, &sink) == Event::kMessageComplete &&
            again == 0,
        "a complete parser took more input");
    log += "body " + std::to_string(sink.body.size()) + ": " + sink.body + "\n";
    sink.body.clear();
    parser.reset();
    in_body = false;
  };
  // After kError: checked and logged; the run ends.
  auto error = [&] {
    const int status = parser.error().status;
    FUZZ_CHECK(status == 400 || status == 413 || status == 415 || status == 431 || status == 500 ||
                   status == 501 || status == 505,
               "status " + std::to_string(status));
    FUZZ_CHECK(!parser.error().reason.empty(), "error without a reason");
    size_t again = 1;
    FUZZ_CHECK(parser.feed(data.data() + off, piece_end - off, &again, &sink) == Event::kError &&
                   again == 0,
               "a failed parser took more input");
    // The body of the failed message is left out: where the error is seen
    // inside a piece decides how much of it was handed over.
    log += "error " + std::to_string(status) + " " + parser.error().reason;
    return log;
  };

  for (int messages = 0; messages < 1000;) {
    if (off == piece_end) {
      if (off == data.size()) break;
      piece_end = off + pieces.next(data.size() - off);
    }
    const size_t len = piece_end - off;
    size_t used = 12345;
    Event ev = parser.feed(data.data() + off, len, &used, &sink);
    FUZZ_CHECK(used <= len, "consumed more than given");
    off += used;
    if (ev == Event::kNeedMore) {
      FUZZ_CHECK(used == len, "kNeedMore without consuming everything");
      continue;
    }
    if (ev == Event::kHeadersComplete) {
      FUZZ_CHECK(!in_body, "a second head for one message");
      in_body = true;
      log += head_line(parser.request(), opt.limits);
      if (off < piece_end) continue;
      // "Call feed again with the rest (even if empty)": a body-less
      // request completes on it.
      size_t again = 1;
      ev = parser.feed(data.data() + off, 0, &again, &sink);
      FUZZ_CHECK(again == 0, "consumed from an empty feed");
      FUZZ_CHECK(ev != Event::kHeadersComplete, "a second head from an empty feed");
      if (ev == Event::kNeedMore) continue;
    }
    if (ev == Event::kError) return error();
    complete();
    ++messages;
  }
  log += "more idle=" + std::to_string(parser.idle()) + "\n";
  return log;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const Options opt = options(in);
  const std::string_view bytes = in.rest();
  const std::string whole = run(bytes, opt, Pieces(0));
  const std::string cut = run(bytes, opt, Pieces(opt.seed));
  FUZZ_CHECK(whole == cut, "one feed:\n" + whole + "\n---- in pieces:\n" + cut);
  return 0;
}

// ---- seeds: the corpus's requests, and its SOAP bodies framed every way a
// CPE frames them.

#include <zlib.h>

namespace {

std::string compress(std::string_view body, int window_bits) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, body.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
  zs.avail_in = static_cast<uInt>(body.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string chunked(std::string_view body, size_t step) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < body.size(); i += step) {
    const size_t n = std::min(step, body.size() - i);
    std::string size;
    for (size_t v = n; v; v >>= 4) size.insert(size.begin(), kHex[v & 15]);
    out += size + (i == 0 ? ";ext=1" : "") + "\r\n";
    out.append(body.substr(i, n));
    out += "\r\n";
  }
  return out + "0\r\nX-Trailer: t\r\n\r\n";
}

void seeds(fuzz::SeedWriter& w) {
  uint32_t seed = 1;
  for (const auto& [name, text] : fuzz::corpus_files("cwmp", ".http"))
    if (text.starts_with("POST")) w.add(fuzz::with_control(0, seed++, text));

  const std::string head =
      "POST /acs HTTP/1.1\r\nHost: acs.example.net:7547\r\nUser-Agent: cpe\r\n"
      "SOAPAction: \"\"\r\nCookie: session=0123456789abcdef\r\n"
      "Content-Type: text/xml; charset=\"utf-8\"\r\n";
  size_t n = 0;
  for (const auto& [name, xml] : fuzz::corpus_files("cwmp", ".xml")) {
    if (xml.size() > 16 * 1024) continue;
    const std::string body = xml;
    std::string framed;
    switch (n++ % 5) {
      case 0:
        framed = head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        break;
      case 1:
        framed = head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(body, 100);
        break;
      case 2: {
        const std::string z = compress(body, 15 + 16);
        framed = head + "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(z.size()) +
                 "\r\n\r\n" + z;
        break;
      }
      case 3: {
        const std::string z =
            compress(body, n % 2 ? 15 : -15);  // zlib, and the raw deflate CPEs send
        framed = head + "Content-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 chunked(z, 256);
        break;
      }
      default:
        // Pipelined: the empty POST after a request, HTTP/1.0 keep-alive.
        framed = head + "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\n\r\n" + body +
                 "POST /acs HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        break;
    }
    w.add(fuzz::with_control(static_cast<uint8_t>(n % 3 == 0 ? 0x20 : 0), seed++, framed));
  }
}

}  // namespace
