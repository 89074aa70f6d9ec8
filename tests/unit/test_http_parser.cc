// The HTTP/1.x request parser: the corpus requests under every split of the
// input, framing (Content-Length, chunked, none), gzip/deflate bodies, limits
// and every error status, pipelining, and allocation-free reuse.
#include "core/http/request_parser.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// ---- allocation tracking ------------------------------------------------------
// Replaces the global operator new so tests can assert that a warmed-up parser
// does not allocate and that a zip bomb never leads to a large allocation.

namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_alloc_count{0};
std::atomic<size_t> g_alloc_max{0};

void* tracked_alloc(std::size_t n) {
  if (g_track.load(std::memory_order_relaxed)) {
    g_alloc_count.fetch_add(1, std::memory_order_relaxed);
    size_t prev = g_alloc_max.load(std::memory_order_relaxed);
    while (n > prev && !g_alloc_max.compare_exchange_weak(prev, n)) {
    }
  }
  return std::malloc(n == 0 ? 1 : n);
}

// Out of line, so that GCC does not see free() meet a pointer from new
// (-Wmismatched-new-delete) once it inlines the replaced operator delete.
[[gnu::noinline]] void tracked_free(void* p) noexcept {
  std::free(p);
}

class AllocationScope {
 public:
  AllocationScope() {
    g_alloc_count = 0;
    g_alloc_max = 0;
    g_track = true;
  }
  ~AllocationScope() { g_track = false; }
  size_t count() const { return g_alloc_count.load(); }
  size_t largest() const { return g_alloc_max.load(); }
};
}  // namespace

void* operator new(std::size_t n) {
  void* p = tracked_alloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return tracked_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return tracked_alloc(n);
}
void operator delete(void* p) noexcept {
  tracked_free(p);
}
void operator delete[](void* p) noexcept {
  tracked_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  tracked_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  tracked_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  tracked_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  tracked_free(p);
}

namespace luacs::http {
namespace {

using Event = RequestParser::Event;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::filesystem::path kCorpus = std::filesystem::path(LUACS_SHARED_DIR) / "corpus" / "cwmp";

struct StringSink : BodySink {
  std::string body;
  size_t calls = 0;
  bool on_body(const char* data, size_t len) override {
    EXPECT_GT(len, 0u);
    body.append(data, len);
    ++calls;
    return true;
  }
};

// Counts bytes without keeping them (for the zip bombs).
struct CountingSink : BodySink {
  uint64_t bytes = 0;
  bool on_body(const char*, size_t len) override {
    bytes += len;
    return true;
  }
};

struct Outcome {
  Event event = Event::kNeedMore;  // kMessageComplete, kError, or kNeedMore when input ran out
  int head_events = 0;
  size_t consumed = 0;  // of the whole input
  std::string body;
};

// Feeds input in pieces of the sizes next_piece() returns, each piece copied
// into its own exact-size heap block so that ASan catches a read past it.
// Stops at kMessageComplete or kError.
Outcome Drive(RequestParser& parser, std::string_view input,
              const std::function<size_t()>& next_piece, BodySink* sink = nullptr) {
  StringSink own;
  if (sink == nullptr) sink = &own;
  Outcome out;
  size_t pos = 0;
  for (;;) {
    size_t piece = std::min(next_piece(), input.size() - pos);
    std::unique_ptr<char[]> block(new char[piece]);
    std::copy_n(input.data() + pos, piece, block.get());
    const char* d = block.get();
    size_t left = piece;
    for (;;) {
      size_t c = 12345;
      Event ev = parser.feed(d, left, &c, sink);
      EXPECT_LE(c, left);
      c = std::min(c, left);
      d += c;
      left -= c;
      pos += c;
      if (ev == Event::kHeadersComplete) {
        if (++out.head_events > 1) {
          ADD_FAILURE() << "kHeadersComplete twice";
          out.event = Event::kError;
          return out;
        }
        continue;  // feed the rest, even if empty
      }
      if (ev == Event::kMessageComplete || ev == Event::kError) {
        out.event = ev;
        out.consumed = pos;
        out.body = own.body;
        return out;
      }
      EXPECT_EQ(left, 0u) << "kNeedMore must consume everything";
      if (left != 0) return out;
      break;
    }
    if (pos == input.size()) {
      out.consumed = pos;
      out.body = own.body;
      return out;
    }
  }
}

std::function<size_t()> Whole() {
  return [] { return SIZE_MAX; };
}
std::function<size_t()> Bytewise() {
  return [] { return size_t{1}; };
}
std::function<size_t()> Random(uint32_t seed, size_t max_piece = 97) {
  auto rng = std::make_shared<std::mt19937>(seed);
  return [rng, max_piece] { return 1 + (*rng)() % max_piece; };
}

struct Parsed {
  Outcome outcome;
  Request request;
  Error error;
};

Parsed ParseFull(std::string_view input, const std::function<size_t()>& split = Whole(),
                 Limits limits = {}) {
  RequestParser parser(limits);
  Parsed p;
  p.outcome = Drive(parser, input, split);
  p.request = parser.request();
  p.error = parser.error();
  return p;
}

int ErrorStatus(std::string_view input, Limits limits = {}) {
  RequestParser parser(limits);
  Outcome o = Drive(parser, input, Whole());
  if (o.event != Event::kError) return 0;
  return parser.error().status;
}

// ---- corpus ---------------------------------------------------------------------

// An independent, naive reading of a corpus request, for comparison.
struct Expected {
  std::string method, target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string leftover;  // bytes after the message
  bool chunked = false;
};

std::string TrimWs(std::string s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string Dechunk(std::string_view in, size_t* used) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = in.find('\n', pos);
    size_t size = std::stoul(std::string(in.substr(pos, eol - pos)), nullptr, 16);
    pos = eol + 1;
    if (size == 0) break;
    out.append(in.substr(pos, size));
    pos += size;
    pos += in[pos] == '\r' ? 2 : 1;
  }
  pos = in.find('\n', pos) + 1;  // blank line after the last chunk (no trailers in the corpus)
  *used = pos;
  return out;
}

Expected ReadExpected(const std::string& file) {
  Expected e;
  size_t crlf = file.find("\r\n\r\n");
  size_t lf = file.find("\n\n");
  size_t head_end = std::min(crlf == std::string::npos ? SIZE_MAX : crlf + 4,
                             lf == std::string::npos ? SIZE_MAX : lf + 2);
  std::string head = file.substr(0, head_end);
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);
  line = TrimWs(line);
  e.method = line.substr(0, line.find(' '));
  e.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
  size_t content_length = 0;
  while (std::getline(lines, line)) {
    if (TrimWs(line).empty()) break;
    size_t colon = line.find(':');
    std::string name = line.substr(0, colon);
    std::string value = TrimWs(line.substr(colon + 1));
    e.headers.emplace_back(name, value);
    if (name == "Content-Length") content_length = std::stoul(value);
    if (name == "Transfer-Encoding") e.chunked = true;
  }
  if (e.chunked) {
    size_t used = 0;
    e.body = Dechunk(std::string_view(file).substr(head_end), &used);
    e.leftover = file.substr(head_end + used);
  } else {
    e.body = file.substr(head_end, content_length);
    e.leftover = file.substr(head_end + content_length);
  }
  return e;
}

std::vector<std::string> CorpusRequests() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus)) {
    if (entry.path().extension() != ".http") continue;
    if (ReadFile(entry.path()).rfind("POST", 0) != 0) continue;  // responses start with HTTP/
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(HttpParserCorpus, FindsTheRequestFiles) {
  std::vector<std::string> names = CorpusRequests();
  EXPECT_GE(names.size(), 9u);
  EXPECT_NE(
      std::find(names.begin(), names.end(), "inform-tr098-thomson-st780-periodic-chunked.http"),
      names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "http-cpe-empty-post-no-content-length.http"),
            names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "http-acs-response-204-end-session.http"),
            names.end());
}

class HttpParserCorpusFile : public ::testing::TestWithParam<std::string> {};

void CheckAgainst(const Parsed& p, const Expected& e, const std::string& file) {
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << p.error.status << " " << p.error.reason;
  EXPECT_EQ(p.outcome.head_events, 1);
  EXPECT_EQ(p.request.method, e.method);
  EXPECT_EQ(p.request.target, e.target);
  EXPECT_EQ(p.request.minor_version, 1);
  EXPECT_EQ(p.request.headers, e.headers);
  EXPECT_EQ(p.request.chunked, e.chunked);
  EXPECT_EQ(p.outcome.body, e.body);
  EXPECT_EQ(p.outcome.consumed, file.size() - e.leftover.size());
}

TEST_P(HttpParserCorpusFile, ParsesWholeBytewiseAndInRandomSplits) {
  const std::string file = ReadFile(kCorpus / GetParam());
  const Expected e = ReadExpected(file);
  ASSERT_FALSE(e.headers.empty());
  {
    SCOPED_TRACE("whole");
    CheckAgainst(ParseFull(file), e, file);
  }
  {
    SCOPED_TRACE("bytewise");
    CheckAgainst(ParseFull(file, Bytewise()), e, file);
  }
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("random split, seed " + std::to_string(seed));
    CheckAgainst(ParseFull(file, Random(seed, seed < 10 ? 7 : 300)), e, file);
  }
}

TEST_P(HttpParserCorpusFile, ParsesWhenSplitInTwoAtEveryByte) {
  const std::string file = ReadFile(kCorpus / GetParam());
  const Expected e = ReadExpected(file);
  for (size_t cut = 0; cut <= file.size(); ++cut) {
    bool first = true;
    auto split = [&]() -> size_t {
      if (!first) return SIZE_MAX;
      first = false;
      return cut;
    };
    Parsed p = ParseFull(file, split);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << "cut at " << cut;
    ASSERT_EQ(p.outcome.body, e.body) << "cut at " << cut;
    ASSERT_EQ(p.request.headers, e.headers) << "cut at " << cut;
  }
}

TEST_P(HttpParserCorpusFile, LeftoverStartsAnIdleNextRequest) {
  const std::string file = ReadFile(kCorpus / GetParam());
  const Expected e = ReadExpected(file);
  RequestParser parser;
  Outcome o = Drive(parser, file, Whole());
  ASSERT_EQ(o.event, Event::kMessageComplete);
  EXPECT_TRUE(parser.idle());
  parser.reset();
  EXPECT_TRUE(parser.idle());
  // perl-cwmp dumps end with one LF after the Content-Length body: it is a
  // blank line before the next request, skipped without leaving idle.
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(e.leftover.data(), e.leftover.size(), &consumed, nullptr),
            Event::kNeedMore);
  EXPECT_EQ(consumed, e.leftover.size());
  EXPECT_TRUE(parser.idle());
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(0, info.param.size() - 5);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Corpus, HttpParserCorpusFile, ::testing::ValuesIn(CorpusRequests()),
                         TestName);

TEST(HttpParserCorpus, ThomsonChunkedInform) {
  const std::string file = ReadFile(kCorpus / "inform-tr098-thomson-st780-periodic-chunked.http");
  for (auto split : {Whole(), Bytewise(), Random(7)}) {
    Parsed p = ParseFull(file, split);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
    EXPECT_TRUE(p.request.chunked);
    EXPECT_FALSE(p.request.content_length.has_value());
    EXPECT_EQ(p.outcome.body.size(), 3107u);
    EXPECT_EQ(p.outcome.body.rfind("<soapenv:Envelope", 0), 0u);
    EXPECT_NE(p.outcome.body.find("</soapenv:Envelope>"), std::string::npos);
    EXPECT_EQ(p.outcome.consumed, file.size());
    EXPECT_EQ(p.request.charset, "ISO-8859-1");
    EXPECT_TRUE(p.request.has_header("soapaction"));
    EXPECT_EQ(p.request.header("SOAPAction"), "");
    EXPECT_EQ(p.request.header("host"), "192.168.1.90");
  }
}

TEST(HttpParserCorpus, PerlCwmpDumpLeavesTheExtraLf) {
  const std::string file =
      ReadFile(kCorpus / "inform-tr098-thomson-st706-periodic-nomorerequests.http");
  Parsed p = ParseFull(file, Bytewise());
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.request.content_length, 2945u);
  EXPECT_EQ(p.outcome.body.size(), 2945u);
  EXPECT_EQ(p.outcome.consumed, file.size() - 1);
  EXPECT_EQ(file.back(), '\n');
  EXPECT_EQ(p.request.charset, "ISO-8859-1");
  EXPECT_EQ(p.request.header("Content-Type"), "text/xml; charset=ISO-8859-1");
  EXPECT_TRUE(p.request.has_header("SOAPAction"));
  EXPECT_EQ(p.request.header("SOAPAction"), "");
  EXPECT_TRUE(p.request.keep_alive);
}

TEST(HttpParserCorpus, EmptyPosts) {
  for (const char* name : {"http-cpe-empty-post-content-length-0.http",
                           "http-cpe-empty-post-no-content-length.http"}) {
    SCOPED_TRACE(name);
    const std::string file = ReadFile(kCorpus / name);
    Parsed p = ParseFull(file);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
    EXPECT_EQ(p.outcome.body, "");
    EXPECT_EQ(p.outcome.consumed, file.size());
    EXPECT_EQ(p.request.target, "/cwmp");
    EXPECT_EQ(p.request.header("cookie"), "session=6b0f4c2e9a7d1e35");
  }
}

// ---- head ---------------------------------------------------------------------

TEST(HttpParser, HeadersCompleteStopsBeforeTheBody) {
  std::string msg = "POST /acs HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  RequestParser parser;
  StringSink sink;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, &sink), Event::kHeadersComplete);
  EXPECT_EQ(consumed, msg.size() - 5);
  EXPECT_EQ(sink.body, "");
  EXPECT_EQ(parser.request().method, "POST");
  EXPECT_EQ(parser.request().target, "/acs");
  EXPECT_EQ(parser.request().content_length, 5u);
  EXPECT_FALSE(parser.idle());
  size_t consumed2 = 0;
  ASSERT_EQ(parser.feed(msg.data() + consumed, 5, &consumed2, &sink), Event::kMessageComplete);
  EXPECT_EQ(consumed2, 5u);
  EXPECT_EQ(sink.body, "hello");
  EXPECT_EQ(parser.body_bytes(), 5u);
  // Complete is sticky until reset().
  EXPECT_EQ(parser.feed("POST", 4, &consumed2, &sink), Event::kMessageComplete);
  EXPECT_EQ(consumed2, 0u);
}

TEST(HttpParser, NoBodyCompletesOnAnEmptyFeed) {
  for (std::string msg :
       {"POST / HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "GET / HTTP/1.0\r\n\r\n"}) {
    SCOPED_TRACE(msg);
    RequestParser parser;
    size_t consumed = 0;
    ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, nullptr), Event::kHeadersComplete);
    EXPECT_EQ(consumed, msg.size());
    EXPECT_EQ(parser.feed(nullptr, 0, &consumed, nullptr), Event::kMessageComplete);
    EXPECT_EQ(consumed, 0u);
    EXPECT_EQ(parser.body_bytes(), 0u);
  }
}

TEST(HttpParser, BareLfLineEndingsAndLeadingBlankLines) {
  Parsed p = ParseFull("\r\n\n\r\nPOST /x HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc", Bytewise());
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.request.target, "/x");
  EXPECT_EQ(p.request.header("HOST"), "h");
  EXPECT_EQ(p.outcome.body, "abc");
}

TEST(HttpParser, HeaderNamesCaseInsensitiveValuesTrimmed) {
  Parsed p = ParseFull(
      "POST / HTTP/1.1\r\nX-Thing:   spaced value \t \r\ncontent-LENGTH: 2\r\nX-Empty:\r\n"
      "X-Thing: second\r\n\r\nab");
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.request.header("x-thing"), "spaced value");  // first match
  EXPECT_EQ(p.request.headers[0].first, "X-Thing");        // name as sent
  EXPECT_EQ(p.request.headers[3].second, "second");
  EXPECT_TRUE(p.request.has_header("x-empty"));
  EXPECT_EQ(p.request.header("X-Empty"), "");
  EXPECT_FALSE(p.request.has_header("X-Absent"));
  EXPECT_EQ(p.request.header("X-Absent"), "");
  EXPECT_EQ(p.outcome.body, "ab");
}

TEST(HttpParser, IdleTracksTheNextRequest) {
  RequestParser parser;
  size_t consumed = 0;
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.feed("\r", 1, &consumed, nullptr), Event::kNeedMore);
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.feed("\n\r\n", 3, &consumed, nullptr), Event::kNeedMore);
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.feed("P", 1, &consumed, nullptr), Event::kNeedMore);
  EXPECT_FALSE(parser.idle());
  std::string rest = "OST / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(parser.feed(rest.data(), rest.size(), &consumed, nullptr), Event::kHeadersComplete);
  EXPECT_FALSE(parser.idle());
  EXPECT_EQ(parser.feed(nullptr, 0, &consumed, nullptr), Event::kMessageComplete);
  EXPECT_TRUE(parser.idle());
  parser.reset();
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.request().method, "");
}

TEST(HttpParser, RequestLine) {
  Parsed p = ParseFull("M-SEARCH  *  HTTP/1.0  \r\n\r\n");  // extra spaces tolerated
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.request.method, "M-SEARCH");
  EXPECT_EQ(p.request.target, "*");
  EXPECT_EQ(p.request.minor_version, 0);

  for (const char* bad :
       {"GARBAGE\r\n\r\n", "POST /\r\n\r\n", "POST / http/1.1\r\n\r\n",
        "POST / HTTP/1.1 extra\r\n\r\n", "POST / HTTP/1\r\n\r\n", "POST / HTTP/1.x\r\n\r\n",
        " POST / HTTP/1.1\r\n\r\n", "PO\x01ST / HTTP/1.1\r\n\r\n", "POST /a\x01z HTTP/1.1\r\n\r\n",
        "POST\t/ HTTP/1.1\r\n\r\n", "POST / HTTP/1.1\r\r\n\r\n", "POST / HTTP/11.1\r\n\r\n",
        "\x16\x03\x01\x02\xfc\n\r\n"}) {
    EXPECT_EQ(ErrorStatus(bad), 400) << bad;
  }
  for (const char* v : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0", "HTTP/1.9"}) {
    EXPECT_EQ(ErrorStatus(std::string("POST / ") + v + "\r\n\r\n"), 505) << v;
  }
}

TEST(HttpParser, BadHeaderLines) {
  for (const char* bad : {
           "POST / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",   // obs-fold
           "POST / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n",  // obs-fold
           "POST / HTTP/1.1\r\nNo colon here\r\n\r\n",        //
           "POST / HTTP/1.1\r\nHost : a\r\n\r\n",             // space before colon
           "POST / HTTP/1.1\r\n: a\r\n\r\n",                  // empty name
           "POST / HTTP/1.1\r\nX(y): a\r\n\r\n",              // non-token name
           "POST / HTTP/1.1\r\nX: a\rb\r\n\r\n",              // bare CR in a value
           "POST / HTTP/1.1\r\nX: a\x01 b\r\n\r\n",           // control character
       }) {
    EXPECT_EQ(ErrorStatus(bad), 400) << bad;
  }
  std::string nul = std::string("POST / HTTP/1.1\r\nX: a") + '\0' + "b\r\n\r\n";
  EXPECT_EQ(ErrorStatus(nul), 400);
  // Bytes >= 0x80 in values (obs-text) are accepted.
  Parsed p = ParseFull("POST / HTTP/1.1\r\nUser-Agent: caf\xc3\xa9\r\n\r\n");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.request.header("user-agent"), "caf\xc3\xa9");
}

TEST(HttpParser, HeaderSectionLimit) {
  Limits limits;
  limits.max_header_bytes = 100;
  const std::string start = "POST / HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  std::string exact = start + std::string(100 - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(exact.size(), 100u);
  for (auto split : {Whole(), Bytewise()}) {
    EXPECT_EQ(ParseFull(exact, split, limits).outcome.event, Event::kMessageComplete);
    std::string over = start + std::string(101 - start.size() - end.size(), 'a') + end;
    Parsed p = ParseFull(over, split, limits);
    EXPECT_EQ(p.outcome.event, Event::kError);
    EXPECT_EQ(p.error.status, 431);
  }
  // A line that never ends is cut off at the limit, not buffered.
  RequestParser parser(limits);
  std::string endless(1000, 'a');
  size_t consumed = 0;
  EXPECT_EQ(parser.feed("POST /", 6, &consumed, nullptr), Event::kNeedMore);
  EXPECT_EQ(parser.feed(endless.data(), endless.size(), &consumed, nullptr), Event::kError);
  EXPECT_EQ(parser.error().status, 431);
  // The default limit is 16 KB.
  std::string big = "POST / HTTP/1.1\r\nX: " + std::string(17 * 1024, 'b') + "\r\n\r\n";
  EXPECT_EQ(ErrorStatus(big), 431);
}

TEST(HttpParser, HeaderCountLimit) {
  Limits limits;
  limits.max_headers = 3;
  std::string three = "POST / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  EXPECT_EQ(ParseFull(three, Whole(), limits).outcome.event, Event::kMessageComplete);
  std::string four = "POST / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  EXPECT_EQ(ErrorStatus(four, limits), 431);
  std::string many = "POST / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X: y\r\n";
  EXPECT_EQ(ErrorStatus(many + "\r\n"), 431);
}

TEST(HttpParser, ContentLength) {
  Parsed p = ParseFull("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.outcome.body, "abc");
  p = ParseFull("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabcdef");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.outcome.body, "abc");
  EXPECT_EQ(p.outcome.consumed,
            std::string_view("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc").size());
  p = ParseFull("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n1234567");
  EXPECT_EQ(p.outcome.body, "1234567");

  for (const char* bad :
       {"Content-Length: 3\r\nContent-Length: 4", "Content-Length: 3, 4", "Content-Length: abc",
        "Content-Length: -1", "Content-Length: +3", "Content-Length: 3a",
        "Content-Length:", "Content-Length: 3 3", "Content-Length: 0x10", "Content-Length: 3,",
        "Content-Length: 99999999999999999999999", "Content-Length: 18446744073709551616",
        "Content-Length: 3\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 3", "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding:"}) {
    EXPECT_EQ(ErrorStatus(std::string("POST / HTTP/1.1\r\n") + bad + "\r\n\r\nabc"), 400) << bad;
  }
}

TEST(HttpParser, TransferEncodingOtherThanChunkedIs501) {
  for (const char* te :
       {"gzip", "gzip, chunked", "chunked, gzip", "identity", "compress", "chunked;q=1"}) {
    EXPECT_EQ(ErrorStatus(std::string("POST / HTTP/1.1\r\nTransfer-Encoding: ") + te +
                          "\r\n\r\n0\r\n\r\n"),
              501)
        << te;
  }
  Parsed p = ParseFull("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_TRUE(p.request.chunked);
}

TEST(HttpParser, ContentLengthOverTheLimitIs413AtTheHead) {
  Limits limits;
  limits.max_body_bytes = 10;
  std::string ok = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
  EXPECT_EQ(ParseFull(ok, Whole(), limits).outcome.body, "0123456789");
  RequestParser parser(limits);
  std::string head = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
  size_t consumed = 0;
  EXPECT_EQ(parser.feed(head.data(), head.size(), &consumed, nullptr), Event::kError);
  EXPECT_EQ(parser.error().status, 413);
  // And it stays failed.
  EXPECT_EQ(parser.feed("x", 1, &consumed, nullptr), Event::kError);
  EXPECT_EQ(consumed, 0u);
  // The default limit is 16 MB.
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Length: 16777217\r\n\r\n"), 413);
  RequestParser p16;
  std::string max = "POST / HTTP/1.1\r\nContent-Length: 16777216\r\n\r\n";
  EXPECT_EQ(p16.feed(max.data(), max.size(), &consumed, nullptr), Event::kHeadersComplete);
}

TEST(HttpParser, ContentEncodingHeader) {
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Encoding: br\r\n\r\n"), 415);
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Encoding: gzip, br\r\n\r\n"), 415);
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Encoding: gzip, deflate\r\n\r\n"), 415);
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\n"
                        "Content-Encoding: gzip\r\n\r\n"),
            415);
  EXPECT_EQ(ErrorStatus("POST / HTTP/1.1\r\nContent-Encoding: compress\r\n\r\n"), 415);
  struct Case {
    const char* value;
    ContentCoding coding;
  };
  for (Case c :
       {Case{"gzip", ContentCoding::kGzip}, Case{"X-GZIP", ContentCoding::kGzip},
        Case{"Deflate", ContentCoding::kDeflate}, Case{"identity", ContentCoding::kIdentity},
        Case{"", ContentCoding::kIdentity}, Case{"identity, gzip", ContentCoding::kGzip}}) {
    Parsed p = ParseFull(std::string("POST / HTTP/1.1\r\nContent-Encoding: ") + c.value +
                         "\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(p.outcome.event, Event::kMessageComplete) << c.value;
    EXPECT_EQ(p.request.coding, c.coding) << c.value;
    EXPECT_EQ(p.outcome.body, "");
  }
}

TEST(HttpParser, ExpectContinue) {
  EXPECT_TRUE(ParseFull("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").request.expect_continue);
  EXPECT_TRUE(ParseFull("POST / HTTP/1.1\r\nexpect: 100-Continue\r\n\r\n").request.expect_continue);
  EXPECT_FALSE(ParseFull("POST / HTTP/1.1\r\nExpect: foo\r\n\r\n").request.expect_continue);
  EXPECT_FALSE(ParseFull("POST / HTTP/1.1\r\n\r\n").request.expect_continue);
  // Ignored from HTTP/1.0 clients (RFC 7231 §5.1.1).
  EXPECT_FALSE(
      ParseFull("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").request.expect_continue);
}

TEST(HttpParser, Charset) {
  struct Case {
    const char* content_type;
    const char* charset;
  };
  for (Case c : {Case{"text/xml; charset=ISO-8859-1", "ISO-8859-1"},
                 Case{"text/xml;charset=\"utf-8\"", "utf-8"}, Case{"text/xml", ""},
                 Case{"text/xml; CharSet = UTF-8 ", "UTF-8"},
                 Case{"text/xml; a=\"x;charset=no\"; charset=latin1", "latin1"},
                 Case{"text/xml; foo; charset=utf-8;bar=1", "utf-8"},
                 Case{"text/xml; charset=", ""}, Case{"application/soap+xml", ""},
                 Case{"text/xml; charset=\"unterminated", "unterminated"}}) {
    Parsed p =
        ParseFull(std::string("POST / HTTP/1.1\r\nContent-Type: ") + c.content_type + "\r\n\r\n");
    EXPECT_EQ(p.outcome.event, Event::kMessageComplete) << c.content_type;
    EXPECT_EQ(p.request.charset, c.charset) << c.content_type;
  }
  EXPECT_EQ(ParseFull("POST / HTTP/1.1\r\n\r\n").request.charset, "");
  // The first Content-Type counts.
  EXPECT_EQ(ParseFull("POST / HTTP/1.1\r\nContent-Type: text/xml; charset=a\r\n"
                      "Content-Type: text/xml; charset=b\r\n\r\n")
                .request.charset,
            "a");
}

// ---- keep-alive and pipelining ----------------------------------------------------

TEST(HttpParser, KeepAliveSemantics) {
  struct Case {
    const char* head;
    bool keep_alive;
  };
  for (Case c : {Case{"POST / HTTP/1.1\r\n\r\n", true},
                 Case{"POST / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
                 Case{"POST / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", false},
                 Case{"POST / HTTP/1.1\r\nConnection: TE\r\nConnection: close\r\n\r\n", false},
                 Case{"POST / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
                 Case{"POST / HTTP/1.0\r\n\r\n", false},
                 Case{"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
                 Case{"POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
                 Case{"POST / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
                 Case{"POST / HTTP/1.0\r\nConnection: closed\r\n\r\n", false}}) {
    Parsed p = ParseFull(c.head);
    EXPECT_EQ(p.outcome.event, Event::kMessageComplete) << c.head;
    EXPECT_EQ(p.request.keep_alive, c.keep_alive) << c.head;
  }
}

// Parses every request in buffer with one parser, reset() between them.
std::vector<std::pair<Request, std::string>> ParsePipelined(std::string_view buffer,
                                                            const std::function<size_t()>& split) {
  std::vector<std::pair<Request, std::string>> out;
  RequestParser parser;
  while (!buffer.empty()) {
    Outcome o = Drive(parser, buffer, split);
    if (o.event == Event::kNeedMore && parser.idle() && o.consumed == buffer.size()) break;
    if (o.event != Event::kMessageComplete) {
      ADD_FAILURE() << "event " << static_cast<int>(o.event) << " " << parser.error().reason;
      break;
    }
    out.emplace_back(parser.request(), o.body);
    buffer.remove_prefix(o.consumed);
    parser.reset();
  }
  return out;
}

TEST(HttpParser, PipelinedRequests) {
  const std::string two =
      "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
      "POST /b HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  auto r = ParsePipelined(two, Whole());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].first.target, "/a");
  EXPECT_EQ(r[0].second, "hello");
  EXPECT_TRUE(r[0].first.keep_alive);
  EXPECT_EQ(r[1].first.target, "/b");
  EXPECT_EQ(r[1].second, "abc");
  EXPECT_FALSE(r[1].first.keep_alive);
  EXPECT_EQ(r[1].first.headers.size(), 2u);  // nothing left over from the first request

  const std::string three =
      "POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: text/xml; charset=x\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: h\r\n\r\n"  // no body
      "\r\n"                                 // stray blank line between requests
      "POST /3 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nxy";
  for (auto split : {Whole(), Bytewise(), Random(3), Random(4, 20)}) {
    auto r3 = ParsePipelined(three, split);
    ASSERT_EQ(r3.size(), 3u);
    EXPECT_EQ(r3[0].first.target, "/1");
    EXPECT_EQ(r3[0].second, "abc");
    EXPECT_EQ(r3[0].first.charset, "x");
    EXPECT_EQ(r3[1].first.target, "/2");
    EXPECT_EQ(r3[1].second, "");
    EXPECT_FALSE(r3[1].first.chunked);
    EXPECT_EQ(r3[1].first.charset, "");
    EXPECT_EQ(r3[1].first.headers.size(), 1u);
    EXPECT_EQ(r3[2].first.target, "/3");
    EXPECT_EQ(r3[2].first.minor_version, 0);
    EXPECT_TRUE(r3[2].first.keep_alive);
    EXPECT_EQ(r3[2].second, "xy");
  }
}

TEST(HttpParser, PipelinedCorpusRequests) {
  std::string all;
  std::vector<Expected> expected;
  for (const std::string& name : CorpusRequests()) {
    std::string file = ReadFile(kCorpus / name);
    expected.push_back(ReadExpected(file));
    all += file;
  }
  for (auto split : {Whole(), Random(11, 1500)}) {
    auto r = ParsePipelined(all, split);
    ASSERT_EQ(r.size(), expected.size());
    for (size_t i = 0; i < r.size(); ++i) {
      EXPECT_EQ(r[i].first.headers, expected[i].headers);
      EXPECT_EQ(r[i].second, expected[i].body);
    }
  }
}

// ---- chunked --------------------------------------------------------------------

std::string Chunked(std::string_view body, const std::vector<size_t>& sizes,
                    std::string_view ext = "") {
  std::string out;
  size_t pos = 0, i = 0;
  char hex[32];
  while (pos < body.size()) {
    size_t n = std::min(sizes[i++ % sizes.size()], body.size() - pos);
    snprintf(hex, sizeof hex, "%zx", n);
    out += hex;
    out += ext;
    out += "\r\n";
    out.append(body.substr(pos, n));
    out += "\r\n";
    pos += n;
  }
  out += "0\r\n\r\n";
  return out;
}

const char kChunkedHead[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

TEST(HttpParserChunked, BoundariesMidTag) {
  std::string body =
      "<soapenv:Envelope><soapenv:Body><cwmp:Inform>x</cwmp:Inform>"
      "</soapenv:Body></soapenv:Envelope>";
  for (auto sizes : std::vector<std::vector<size_t>>{{1}, {3, 5}, {7}, {1000}, {16, 1, 2}}) {
    std::string msg = kChunkedHead + Chunked(body, sizes);
    for (auto split : {Whole(), Bytewise(), Random(5, 9)}) {
      Parsed p = ParseFull(msg, split);
      ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << p.error.reason;
      EXPECT_EQ(p.outcome.body, body);
      EXPECT_EQ(p.outcome.consumed, msg.size());
    }
  }
}

TEST(HttpParserChunked, ExtensionsAreIgnored) {
  std::string msg = std::string(kChunkedHead) +
                    "5;name=value\r\nhello\r\n6 ; a=\"q;\\\"x\" ;b\r\n world\r\n0;last\r\n\r\n";
  Parsed p = ParseFull(msg, Bytewise());
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << p.error.reason;
  EXPECT_EQ(p.outcome.body, "hello world");
  EXPECT_EQ(ParseFull(kChunkedHead + Chunked("abcdef", {2}, ";x=y")).outcome.body, "abcdef");
}

TEST(HttpParserChunked, TrailersAcceptedAndIgnored) {
  std::string msg =
      std::string(kChunkedHead) + "3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nX-Other: y\r\n\r\nPOST";
  for (auto split : {Whole(), Bytewise()}) {
    Parsed p = ParseFull(msg, split);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
    EXPECT_EQ(p.outcome.body, "abc");
    EXPECT_EQ(p.outcome.consumed, msg.size() - 4);
    EXPECT_FALSE(p.request.has_header("X-Checksum"));
  }
  Limits limits;
  limits.max_header_bytes = 64;
  std::string big = std::string(kChunkedHead) + "0\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
  EXPECT_EQ(ErrorStatus(big, limits), 431);
}

TEST(HttpParserChunked, EmptyBody) {
  for (auto split : {Whole(), Bytewise()}) {
    Parsed p = ParseFull(std::string(kChunkedHead) + "0\r\n\r\n", split);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
    EXPECT_EQ(p.outcome.body, "");
    EXPECT_TRUE(p.request.chunked);
  }
  EXPECT_EQ(ParseFull(std::string(kChunkedHead) + "000\r\n\r\n").outcome.event,
            Event::kMessageComplete);
}

TEST(HttpParserChunked, HexSizes) {
  std::string body(0xAB, 'z');
  for (const char* size : {"AB", "ab", "aB", "00000000000000000000000000ab"}) {
    std::string msg = std::string(kChunkedHead) + size + "\r\n" + body + "\r\n0\r\n\r\n";
    Parsed p = ParseFull(msg);
    ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << size;
    EXPECT_EQ(p.outcome.body, body);
  }
}

TEST(HttpParserChunked, BareLfFraming) {
  Parsed p = ParseFull(std::string(kChunkedHead) + "5\nhello\n0\n\n", Bytewise());
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.outcome.body, "hello");
}

TEST(HttpParserChunked, InvalidSizes) {
  for (const char* bad :
       {"xyz\r\nabc\r\n0\r\n\r\n", "\r\nabc\r\n0\r\n\r\n", "-1\r\n\r\n",
        "5 5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", " 5\r\nhello\r\n0\r\n\r\n",
        "5\rhello\r\n0\r\n\r\n", ";ext\r\n\r\n", "g\r\n\r\n"}) {
    EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + bad), 400) << bad;
  }
}

TEST(HttpParserChunked, SizeOverflow) {
  // 17 hex digits do not fit in 64 bits.
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "10000000000000000\r\n"), 400);
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "FFFFFFFFFFFFFFFFFFFF\r\n"), 400);
  // 16 digits fit but are far over the body limit.
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "FFFFFFFFFFFFFFFF\r\n"), 413);
}

TEST(HttpParserChunked, MissingCrlfAfterChunk) {
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "5\r\nhelloX\r\n0\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "5\r\nhello\rX0\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "5\r\nhello0\r\n\r\n"), 400);
}

TEST(HttpParserChunked, LongExtensionRejected) {
  Limits limits;
  limits.max_header_bytes = 64;
  EXPECT_EQ(ErrorStatus(std::string(kChunkedHead) + "5;" + std::string(100, 'e') + "\r\n", limits),
            400);
}

TEST(HttpParserChunked, BodyLimit) {
  Limits limits;
  limits.max_body_bytes = 10;
  std::string body(10, 'x');
  EXPECT_EQ(ParseFull(kChunkedHead + Chunked(body, {3}), Whole(), limits).outcome.body, body);
  // Over the limit across chunks: 413, and nothing past the limit reaches the sink.
  std::string over(11, 'x');
  Parsed p = ParseFull(kChunkedHead + Chunked(over, {4}), Whole(), limits);
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 413);
  EXPECT_EQ(p.outcome.body.size(), 8u);  // the first two chunks; the third is refused at its size
  // A single announced chunk over the limit is refused before its data.
  RequestParser parser(limits);
  StringSink sink;
  std::string msg = std::string(kChunkedHead) + "b\r\n";
  Outcome o = Drive(parser, msg, Whole(), &sink);
  EXPECT_EQ(o.event, Event::kError);
  EXPECT_EQ(parser.error().status, 413);
  EXPECT_EQ(sink.body, "");
}

// ---- sinks and fail() -------------------------------------------------------------

struct RefusingSink : BodySink {
  RequestParser* parser = nullptr;
  int status = 0;  // if set, the sink calls fail() with it
  bool return_value = false;
  bool on_body(const char*, size_t) override {
    if (status != 0) parser->fail(status, "sink says no");
    return return_value;
  }
};

TEST(HttpParser, SinkCanAbort) {
  std::string msg = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  {
    RequestParser parser;
    RefusingSink sink;
    sink.parser = &parser;
    EXPECT_EQ(Drive(parser, msg, Whole(), &sink).event, Event::kError);
    EXPECT_EQ(parser.error().status, 400);
  }
  {
    RequestParser parser;
    RefusingSink sink;
    sink.parser = &parser;
    sink.status = 413;
    EXPECT_EQ(Drive(parser, msg, Whole(), &sink).event, Event::kError);
    EXPECT_EQ(parser.error().status, 413);
    EXPECT_EQ(parser.error().reason, "sink says no");
  }
  {
    RequestParser parser;
    RefusingSink sink;
    sink.parser = &parser;
    sink.status = 500;
    sink.return_value = true;  // fail() alone is enough
    EXPECT_EQ(Drive(parser, msg, Whole(), &sink).event, Event::kError);
    EXPECT_EQ(parser.error().status, 500);
  }
}

TEST(HttpParser, CallerCanFailAfterTheHead) {
  std::string msg = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  RequestParser parser;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, nullptr), Event::kHeadersComplete);
  parser.fail(405, "POST only");
  size_t c2 = 0;
  EXPECT_EQ(parser.feed(msg.data() + consumed, 3, &c2, nullptr), Event::kError);
  EXPECT_EQ(c2, 0u);
  EXPECT_EQ(parser.error().status, 405);
  EXPECT_EQ(parser.error().reason, "POST only");
  EXPECT_FALSE(parser.idle());
  parser.reset();
  EXPECT_TRUE(parser.idle());
  EXPECT_EQ(parser.error().reason, "");
  Outcome o = Drive(parser, msg, Whole());
  EXPECT_EQ(o.event, Event::kMessageComplete);
}

TEST(HttpParser, NullSinkDropsTheBody) {
  RequestParser parser;
  std::string msg = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, nullptr), Event::kHeadersComplete);
  size_t c2 = 0;
  EXPECT_EQ(parser.feed(msg.data() + consumed, msg.size() - consumed, &c2, nullptr),
            Event::kMessageComplete);
  EXPECT_EQ(parser.body_bytes(), 3u);
}

// The body of a Content-Length request reaches the sink in place: no copy.
struct PointerSink : BodySink {
  std::vector<const char*> pointers;
  bool on_body(const char* data, size_t) override {
    pointers.push_back(data);
    return true;
  }
};

TEST(HttpParser, IdentityBodyIsNotCopied) {
  std::string msg = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  RequestParser parser;
  PointerSink sink;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, &sink), Event::kHeadersComplete);
  size_t c2 = 0;
  ASSERT_EQ(parser.feed(msg.data() + consumed, 3, &c2, &sink), Event::kMessageComplete);
  ASSERT_EQ(sink.pointers.size(), 1u);
  EXPECT_EQ(sink.pointers[0], msg.data() + consumed);
}

TEST(HttpParser, ParserCanMoveBetweenFeeds) {
  std::string body(40000, 'q');
  std::string msg =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"
      "\r\n";
  // Compressed body, chunked, moved mid-way.
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string gz(deflateBound(&zs, body.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(body.data());
  zs.avail_in = static_cast<uInt>(body.size());
  zs.next_out = reinterpret_cast<Bytef*>(gz.data());
  zs.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  msg += Chunked(gz, {10});

  auto parser = std::make_unique<RequestParser>();
  StringSink sink;
  size_t half = msg.size() / 2, consumed = 0;
  ASSERT_EQ(parser->feed(msg.data(), half, &consumed, &sink), Event::kHeadersComplete);
  ASSERT_EQ(parser->feed(msg.data() + consumed, half - consumed, &consumed, &sink),
            Event::kNeedMore);
  RequestParser moved = std::move(*parser);
  parser.reset();
  ASSERT_EQ(moved.feed(msg.data() + half, msg.size() - half, &consumed, &sink),
            Event::kMessageComplete);
  EXPECT_EQ(sink.body, body);
}

// ---- gzip / deflate ---------------------------------------------------------------

// window_bits: 15 + 16 gzip, 15 zlib, -15 raw deflate.
std::string Compress(std::string_view in, int window_bits, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A 50 KB Inform-like body, so the inflater fills its 16 KB buffer several times.
std::string BigBody() {
  std::string xml = ReadFile(kCorpus / "inform-tr098-zyxel-p2601hn-periodic.xml");
  std::string body;
  for (int i = 0; body.size() < 50000; ++i) body += xml + "<!-- " + std::to_string(i) + " -->\n";
  return body;
}

std::string WithLength(std::string_view coding, std::string_view payload) {
  return "POST / HTTP/1.1\r\nContent-Encoding: " + std::string(coding) +
         "\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n\r\n" +
         std::string(payload);
}

std::string WithChunks(std::string_view coding, std::string_view payload) {
  return "POST / HTTP/1.1\r\nContent-Encoding: " + std::string(coding) +
         "\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunked(payload, {1000, 3, 77});
}

TEST(HttpParserCoding, GzipAndDeflateBodies) {
  const std::string body = BigBody();
  struct Case {
    const char* coding;
    int window_bits;
    ContentCoding expected;
  };
  for (Case c :
       {Case{"gzip", 15 + 16, ContentCoding::kGzip}, Case{"x-gzip", 15 + 16, ContentCoding::kGzip},
        Case{"deflate", 15, ContentCoding::kDeflate},   // zlib-wrapped, as specified
        Case{"deflate", -15, ContentCoding::kDeflate},  // raw, as some clients send
        Case{"deflate", 9, ContentCoding::kDeflate},    // zlib, small window
        Case{"deflate", -9, ContentCoding::kDeflate},
        Case{"gzip", 15, ContentCoding::kGzip}}) {  // zlib data labelled gzip
    const std::string payload = Compress(body, c.window_bits);
    for (const std::string& msg : {WithLength(c.coding, payload), WithChunks(c.coding, payload)}) {
      for (auto split : {Whole(), Random(1, 7), Bytewise()}) {
        SCOPED_TRACE(std::string(c.coding) + " bits " + std::to_string(c.window_bits));
        RequestParser parser;
        Outcome o = Drive(parser, msg, split);
        ASSERT_EQ(o.event, Event::kMessageComplete) << parser.error().reason;
        EXPECT_EQ(parser.request().coding, c.expected);
        EXPECT_EQ(o.body.size(), body.size());
        EXPECT_TRUE(o.body == body);
        EXPECT_EQ(parser.body_bytes(), body.size());
        EXPECT_EQ(o.consumed, msg.size());
      }
    }
  }
}

TEST(HttpParserCoding, InflatedPiecesAreAtMost16K) {
  const std::string body = BigBody();
  std::string msg = WithLength("gzip", Compress(body, 31));
  struct MaxSink : BodySink {
    size_t max = 0, total = 0;
    bool on_body(const char*, size_t len) override {
      max = std::max(max, len);
      total += len;
      return true;
    }
  } sink;
  RequestParser parser;
  EXPECT_EQ(Drive(parser, msg, Whole(), &sink).event, Event::kMessageComplete);
  EXPECT_EQ(sink.total, body.size());
  EXPECT_LE(sink.max, 16u * 1024);
}

TEST(HttpParserCoding, MultiMemberGzip) {
  std::string payload = Compress("hello ", 31) + Compress("world", 31);
  Parsed p = ParseFull(WithLength("gzip", payload), Bytewise());
  ASSERT_EQ(p.outcome.event, Event::kMessageComplete) << p.error.reason;
  EXPECT_EQ(p.outcome.body, "hello world");
}

TEST(HttpParserCoding, BrokenStreamsAre400) {
  const std::string body = BigBody();
  std::string gz = Compress(body, 31);
  // Truncated: the stream never ends.
  Parsed p = ParseFull(WithLength("gzip", gz.substr(0, gz.size() - 10)));
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 400);
  p = ParseFull(WithChunks("gzip", gz.substr(0, gz.size() / 2)));
  EXPECT_EQ(p.error.status, 400);
  // Corrupt.
  std::string bad = gz;
  for (size_t i = 20; i < 60; ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5a);
  p = ParseFull(WithLength("gzip", bad));
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 400);
  // Not compressed at all.
  p = ParseFull(WithLength("gzip", "<soapenv:Envelope/>"));
  EXPECT_EQ(p.error.status, 400);
  // Garbage after a complete deflate stream.
  p = ParseFull(WithLength("deflate", Compress("abc", 15) + "junk"));
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 400);
  p = ParseFull(WithLength("deflate", Compress("abc", -15) + "junk"));
  EXPECT_EQ(p.error.status, 400);
  // One byte of deflate: too short to even pick zlib or raw.
  p = ParseFull(WithLength("deflate", Compress("abc", 15).substr(0, 1)));
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 400);
  // A valid stream after a broken one, on the same parser after reset().
  RequestParser parser;
  EXPECT_EQ(Drive(parser, WithLength("gzip", bad), Whole()).event, Event::kError);
  parser.reset();
  Outcome o = Drive(parser, WithLength("gzip", gz), Whole());
  EXPECT_EQ(o.event, Event::kMessageComplete);
  EXPECT_TRUE(o.body == body);
}

TEST(HttpParserCoding, EmptyCompressedBody) {
  Parsed p = ParseFull("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  p = ParseFull(
      "POST / HTTP/1.1\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n");
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  // A compressed empty document is fine too.
  p = ParseFull(WithLength("gzip", Compress("", 31)));
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.outcome.body, "");
}

TEST(HttpParserCoding, InflatedLimitIsExact) {
  Limits limits;
  limits.max_body_bytes = 40000;
  std::string body(40000, 'a');
  Parsed p = ParseFull(WithLength("gzip", Compress(body, 31)), Whole(), limits);
  EXPECT_EQ(p.outcome.event, Event::kMessageComplete);
  EXPECT_EQ(p.outcome.body.size(), 40000u);
  body.push_back('b');
  p = ParseFull(WithLength("gzip", Compress(body, 31)), Random(2, 50), limits);
  EXPECT_EQ(p.outcome.event, Event::kError);
  EXPECT_EQ(p.error.status, 413);
  EXPECT_LE(p.outcome.body.size(), 40000u);
}

// gzip of `size` zero bytes, compressed as a stream (never held whole).
std::string GzipZeros(uint64_t size) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<unsigned char> zeros(1 << 20, 0);
  std::string out;
  std::vector<unsigned char> buf(1 << 16);
  uint64_t left = size;
  int rc = Z_OK;
  do {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
    zs.next_in = zeros.data();
    zs.avail_in = static_cast<uInt>(n);
    left -= n;
    int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      zs.next_out = buf.data();
      zs.avail_out = static_cast<uInt>(buf.size());
      rc = deflate(&zs, flush);
      out.append(reinterpret_cast<char*>(buf.data()), buf.size() - zs.avail_out);
    } while (zs.avail_out == 0);
  } while (left > 0);
  EXPECT_EQ(rc, Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

TEST(HttpParserCoding, ZipBombStopsAtTheLimit) {
  const std::string bomb = GzipZeros(uint64_t{100} << 20);  // 100 MB of zeros
  EXPECT_LT(bomb.size(), 200u * 1024);
  for (const std::string& msg : {WithLength("gzip", bomb), WithChunks("gzip", bomb)}) {
    RequestParser parser;  // default limit: 16 MB
    CountingSink sink;
    size_t consumed = 0;
    ASSERT_EQ(parser.feed(msg.data(), msg.size(), &consumed, &sink), Event::kHeadersComplete);
    Event ev;
    {
      AllocationScope allocations;
      size_t c2 = 0;
      ev = parser.feed(msg.data() + consumed, msg.size() - consumed, &c2, &sink);
      EXPECT_LT(allocations.largest(), 64u * 1024) << "the decoded body must not be held";
    }
    EXPECT_EQ(ev, Event::kError);
    EXPECT_EQ(parser.error().status, 413);
    EXPECT_LE(sink.bytes, 16u << 20);
    EXPECT_GT(sink.bytes, 15u << 20);
    EXPECT_LE(parser.body_bytes(), 16u << 20);
  }
}

// ---- allocation-free reuse ----------------------------------------------------------

TEST(HttpParserReuse, NoAllocationAfterWarmUp) {
  const std::string body = BigBody();
  const std::vector<std::string> messages = {
      ReadFile(kCorpus / "inform-tr098-thomson-st706-periodic-nomorerequests.http"),
      ReadFile(kCorpus / "inform-tr098-thomson-st780-periodic-chunked.http"),
      ReadFile(kCorpus / "getparametervaluesresponse-tr098-thomson-bantr.http"),
      WithLength("gzip", Compress(body, 31)),
      WithChunks("deflate", Compress(body, -15)),
      WithChunks("deflate", Compress(body, 15)),
  };
  struct ReservedSink : BodySink {
    std::string body;
    bool on_body(const char* data, size_t len) override {
      body.append(data, len);
      return true;
    }
  } sink;
  sink.body.reserve(body.size() * 2);
  RequestParser parser;
  auto parse_all = [&](bool split) {
    for (const std::string& msg : messages) {
      sink.body.clear();
      parser.reset();
      size_t pos = 0;
      Event ev = Event::kNeedMore;
      while (pos < msg.size() || ev == Event::kHeadersComplete) {
        size_t piece = split ? std::min<size_t>(13, msg.size() - pos) : msg.size() - pos;
        size_t consumed = 0;
        ev = parser.feed(msg.data() + pos, piece, &consumed, &sink);
        pos += consumed;
        if (ev == Event::kMessageComplete || ev == Event::kError) break;
      }
      EXPECT_EQ(ev, Event::kMessageComplete) << parser.error().reason;
    }
  };
  parse_all(false);
  parse_all(true);
  {
    AllocationScope allocations;
    parse_all(false);
    parse_all(true);
    EXPECT_EQ(allocations.count(), 0u);
  }
  EXPECT_EQ(sink.body, body);
}

// A client sending a big header at a different position in each request must
// not make the parser keep one big buffer per position between requests.
TEST(HttpParserReuse, KeptHeaderBuffersAreBounded) {
  RequestParser parser;
  const size_t big = 8000;
  for (int round = 0; round < 2; ++round) {
    for (int position = 0; position < 20; ++position) {
      std::string msg = "POST / HTTP/1.1\r\n";
      for (int i = 0; i < 20; ++i) {
        msg += "X" + std::to_string(i) + ": " + std::string(i == position ? big : 1, 'v') + "\r\n";
      }
      msg += "\r\n";
      parser.reset();
      ASSERT_EQ(Drive(parser, msg, Whole()).event, Event::kMessageComplete);
      EXPECT_EQ(parser.request().header("X" + std::to_string(position)).size(), big);
    }
  }
  // Every position has held an 8000-byte value, but at most two such buffers
  // fit the 16 KB budget. A request with 700 bytes at each of the 20
  // positions (a 14 KB head) therefore has to allocate for most of them;
  // without the bound it would find 20 big buffers waiting.
  std::string msg = "POST / HTTP/1.1\r\n";
  for (int i = 0; i < 20; ++i) msg += "X: " + std::string(700, 'w') + "\r\n";
  msg += "\r\n";
  ASSERT_LT(msg.size(), 16u * 1024);
  parser.reset();
  {
    AllocationScope allocations;
    size_t consumed = 0;
    EXPECT_EQ(parser.feed(msg.data(), msg.size(), &consumed, nullptr), Event::kHeadersComplete);
    EXPECT_GE(allocations.count(), 15u);
  }
}

}  // namespace
}  // namespace luacs::http
