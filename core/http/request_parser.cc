#include "core/http/request_parser.h"
#include "core/util/hex.h"
#include "core/util/text.h"

#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace luacs::http {
namespace {

constexpr size_t kInflateOut = 16 * 1024;

constexpr std::array<bool, 256> make_tchar_table() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar_table();

inline bool is_tchar(char c) {
  return kTchar[static_cast<unsigned char>(c)];
}
inline bool is_ows(char c) {
  return c == ' ' || c == '\t';
}
// a is arbitrary, lower is an all-lower-case literal.
bool iequals(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (text::ascii_lower(a[i]) != lower[i]) return false;
  }
  return true;
}

// Calls f(element) for each trimmed, non-empty element of a comma-separated
// list; stops early when f returns false.
template <typename F>
bool for_each_element(std::string_view list, F&& f) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view element = text::trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (!element.empty() && !f(element)) return false;
  }
  return true;
}

// Content-Length = 1*DIGIT. RFC 7230 §3.3.2 lets a recipient accept a list
// of identical values ("42, 42"), which some proxies produce.
bool parse_content_length(std::string_view value, uint64_t* out) {
  bool any = false;
  for (;;) {
    size_t comma = value.find(',');
    std::string_view element = text::trim(value.substr(0, comma));
    if (element.empty()) return false;
    uint64_t v = 0;
    for (char c : element) {
      if (c < '0' || c > '9') return false;
      if (v > (UINT64_MAX - 9) / 10) return false;  // overflow
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (any && v != *out) return false;
    *out = v;
    any = true;
    if (comma == std::string_view::npos) return true;
    value = value.substr(comma + 1);
  }
}

// The charset parameter of a Content-Type value, unquoted; "" if absent.
// Parameters: *( OWS ";" OWS name "=" ( token / quoted-string ) ).
std::string_view find_charset(std::string_view ct) {
  size_t i = ct.find(';');
  if (i == std::string_view::npos) return {};
  while (i < ct.size()) {
    while (i < ct.size() && (is_ows(ct[i]) || ct[i] == ';')) ++i;
    size_t name_start = i;
    while (i < ct.size() && ct[i] != '=' && ct[i] != ';') ++i;
    std::string_view name = text::trim(ct.substr(name_start, i - name_start));
    if (i >= ct.size() || ct[i] == ';') continue;  // parameter without a value
    ++i;                                           // '='
    while (i < ct.size() && is_ows(ct[i])) ++i;
    std::string_view value;
    if (i < ct.size() && ct[i] == '"') {
      size_t start = ++i;
      while (i < ct.size() && ct[i] != '"') i += ct[i] == '\\' ? 2 : 1;
      i = std::min(i, ct.size());
      value = ct.substr(start, i - start);
      i = std::min(ct.find(';', i), ct.size());
    } else {
      size_t start = i;
      while (i < ct.size() && ct[i] != ';') ++i;
      value = text::trim(ct.substr(start, i - start));
    }
    if (iequals(name, "charset")) return value;
  }
  return {};
}

}  // namespace

// ---- Request -----------------------------------------------------------------

std::string_view Request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (text::iequals(n, name)) return v;
  }
  return {};
}

bool Request::has_header(std::string_view name) const {
  for (const auto& h : headers) {
    if (text::iequals(h.first, name)) return true;
  }
  return false;
}

// ---- zlib --------------------------------------------------------------------

// One z_stream per parser, initialised on the first compressed body and reset
// (not re-created) for the next ones. Lives on the heap because zlib keeps a
// pointer back to the z_stream, so the stream must never move.
struct RequestParser::Inflater {
  z_stream zs{};
  bool initialized = false;
  bool gzip = false;        // Content-Encoding gzip: multi-member streams allowed
  bool decided = false;     // window bits chosen (deflate waits for two bytes)
  bool started = false;     // any compressed byte seen
  bool stream_end = false;  // Z_STREAM_END reached
  unsigned char head[2] = {0, 0};
  size_t head_len = 0;
  std::unique_ptr<unsigned char[]> out{new unsigned char[kInflateOut]};

  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (initialized) inflateEnd(&zs);
  }

  bool start(ContentCoding coding) {
    if (!initialized) {
      if (inflateInit2(&zs, 15 + 32) != Z_OK) return false;
      initialized = true;
    }
    gzip = coding == ContentCoding::kGzip;
    decided = gzip;
    started = false;
    stream_end = false;
    head_len = 0;
    // 15 + 32: zlib or gzip header, detected by zlib.
    return !gzip || inflateReset2(&zs, 15 + 32) == Z_OK;
  }
};

// ---- RequestParser -----------------------------------------------------------

RequestParser::RequestParser(Limits limits) : limits_(limits) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;

void RequestParser::fail(int status, std::string reason) {
  error_.status = status;
  error_.reason = std::move(reason);
  state_ = State::kError;
}

bool RequestParser::idle() const {
  if (state_ == State::kDone) return true;
  if (state_ != State::kStart) return false;
  if (line_in_buf_) return true;  // a blank line already skipped
  return line_buf_.find_first_not_of('\r') == std::string::npos;
}

void RequestParser::reset() {
  state_ = State::kStart;
  request_.method.clear();
  request_.target.clear();
  request_.minor_version = 1;
  // Keep the header strings (and their capacity) for the next request, in
  // reverse so that header i tends to get back the buffers it had. What is
  // kept is bounded by max_header_bytes, so a client cannot make an idle
  // connection hold a large buffer per header position.
  for (auto it = request_.headers.rbegin(); it != request_.headers.rend(); ++it) {
    size_t capacity = it->first.capacity() + it->second.capacity();
    if (capacity > limits_.max_header_bytes - std::min(spare_bytes_, limits_.max_header_bytes)) {
      continue;  // freed by clear() below
    }
    spare_bytes_ += capacity;
    spare_headers_.push_back(std::move(*it));
  }
  request_.headers.clear();
  request_.keep_alive = true;
  request_.chunked = false;
  request_.content_length.reset();
  request_.coding = ContentCoding::kIdentity;
  request_.expect_continue = false;
  request_.charset.clear();
  error_.status = 400;
  error_.reason.clear();
  line_buf_.clear();
  line_in_buf_ = false;
  head_bytes_ = 0;
  trailer_bytes_ = 0;
  te_seen_ = false;
  conn_close_ = false;
  conn_keep_alive_ = false;
  content_type_seen_ = false;
  remaining_ = 0;
  raw_body_bytes_ = 0;
  body_bytes_ = 0;
  chunk_line_bytes_ = 0;
  chunk_digits_ = false;
}

// Returns the next line without its LF (and CR), either as a view into the
// input or, when the line was split across feed() calls, into line_buf_.
// *counter counts the bytes taken and is bounded by max_header_bytes.
RequestParser::LineResult RequestParser::take_line(const char*& p, const char* end, size_t* counter,
                                                   std::string_view* line) {
  if (line_in_buf_) {
    line_buf_.clear();
    line_in_buf_ = false;
  }
  size_t avail = static_cast<size_t>(end - p);
  const char* nl = static_cast<const char*>(std::memchr(p, '\n', avail));
  if (nl == nullptr) {
    if (avail > limits_.max_header_bytes - *counter) return LineResult::kTooLong;
    *counter += avail;
    line_buf_.append(p, avail);
    p = end;
    return LineResult::kPartial;
  }
  size_t n = static_cast<size_t>(nl - p) + 1;
  if (n > limits_.max_header_bytes - *counter) return LineResult::kTooLong;
  *counter += n;
  std::string_view l;
  if (line_buf_.empty()) {
    l = std::string_view(p, n - 1);
  } else {
    line_buf_.append(p, n - 1);
    line_in_buf_ = true;
    l = line_buf_;
  }
  p = nl + 1;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  *line = l;
  return LineResult::kLine;
}

// method SP request-target SP HTTP/1.x
bool RequestParser::on_request_line(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && is_tchar(line[i])) ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') {
    fail(400, "bad request line");
    return false;
  }
  std::string_view method = line.substr(0, i);
  while (i < line.size() && line[i] == ' ') ++i;
  size_t target_start = i;
  while (i < line.size() && line[i] > 0x20 && line[i] < 0x7f) ++i;
  if (i == target_start || i >= line.size() || line[i] != ' ') {
    fail(400, "bad request line");
    return false;
  }
  std::string_view target = line.substr(target_start, i - target_start);
  while (i < line.size() && line[i] == ' ') ++i;
  std::string_view version = line.substr(i);
  while (!version.empty() && version.back() == ' ') version.remove_suffix(1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    fail(400, "bad request line");
    return false;
  }
  if (version[5] != '1' || version[7] > '1') {
    fail(505, "HTTP version not supported");
    return false;
  }
  request_.method.assign(method);
  request_.target.assign(target);
  request_.minor_version = version[7] - '0';
  return true;
}

bool RequestParser::on_header_line(std::string_view line) {
  if (is_ows(line.front())) {
    fail(400, "obsolete line folding");
    return false;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    fail(400, "bad header line");
    return false;
  }
  std::string_view name = line.substr(0, colon);
  for (char c : name) {
    if (!is_tchar(c)) {
      fail(400, "bad header name");
      return false;
    }
  }
  std::string_view value = text::trim(line.substr(colon + 1));
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      fail(400, "bad header value");
      return false;
    }
  }
  if (request_.headers.size() >= limits_.max_headers) {
    fail(431, "too many headers");
    return false;
  }
  if (spare_headers_.empty()) {
    request_.headers.emplace_back(name, value);
  } else {
    auto& h = request_.headers.emplace_back(std::move(spare_headers_.back()));
    spare_headers_.pop_back();
    spare_bytes_ -= h.first.capacity() + h.second.capacity();
    h.first.assign(name);
    h.second.assign(value);
  }

  // Fields the parser itself needs; the length check keeps this cheap.
  switch (name.size()) {
    case 14:
      if (iequals(name, "content-length")) {
        uint64_t cl = 0;
        if (!parse_content_length(value, &cl) ||
            (request_.content_length && *request_.content_length != cl)) {
          fail(400, "bad Content-Length");
          return false;
        }
        request_.content_length = cl;
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        te_seen_ = true;
        int status = 0;
        bool any = false;
        for_each_element(value, [&](std::string_view coding) {
          any = true;
          if (!iequals(coding, "chunked")) {
            status = 501;
            return false;
          }
          if (request_.chunked) {
            status = 400;  // chunked twice
            return false;
          }
          request_.chunked = true;
          return true;
        });
        if (status == 0 && !any) status = 400;
        if (status != 0) {
          fail(status, status == 501 ? "unsupported Transfer-Encoding" : "bad Transfer-Encoding");
          return false;
        }
      }
      break;
    case 10:
      if (iequals(name, "connection")) {
        for_each_element(value, [&](std::string_view token) {
          if (iequals(token, "close")) conn_close_ = true;
          if (iequals(token, "keep-alive")) conn_keep_alive_ = true;
          return true;
        });
      }
      break;
    case 16:
      if (iequals(name, "content-encoding")) {
        bool ok = for_each_element(value, [&](std::string_view coding) {
          ContentCoding c;
          if (iequals(coding, "identity")) return true;
          if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) {
            c = ContentCoding::kGzip;
          } else if (iequals(coding, "deflate")) {
            c = ContentCoding::kDeflate;
          } else {
            return false;
          }
          if (request_.coding != ContentCoding::kIdentity) return false;  // stacked codings
          request_.coding = c;
          return true;
        });
        if (!ok) {
          fail(415, "unsupported Content-Encoding");
          return false;
        }
      }
      break;
    case 6:
      if (iequals(name, "expect") && iequals(value, "100-continue")) {
        request_.expect_continue = true;
      }
      break;
    case 12:
      if (!content_type_seen_ && iequals(name, "content-type")) {
        content_type_seen_ = true;
        request_.charset.assign(find_charset(value));
      }
      break;
    default:
      break;
  }
  return true;
}

bool RequestParser::on_head_complete() {
  if (te_seen_ && request_.content_length) {
    fail(400, "both Content-Length and Transfer-Encoding");
    return false;
  }
  request_.keep_alive =
      request_.minor_version >= 1 ? !conn_close_ : (conn_keep_alive_ && !conn_close_);
  // RFC 7231 §5.1.1: an HTTP/1.0 client cannot expect a 100 Continue.
  if (request_.minor_version == 0) request_.expect_continue = false;
  if (request_.coding != ContentCoding::kIdentity) {
    if (!inflater_) inflater_ = std::make_unique<Inflater>();
    if (!inflater_->start(request_.coding)) {
      fail(500, "cannot initialise zlib");
      return false;
    }
  }
  if (request_.chunked) {
    state_ = State::kChunkSize;
    remaining_ = 0;
    chunk_line_bytes_ = 0;
    chunk_digits_ = false;
  } else if (request_.content_length && *request_.content_length > 0) {
    if (*request_.content_length > limits_.max_body_bytes) {
      fail(413, "body too large");
      return false;
    }
    remaining_ = *request_.content_length;
    state_ = State::kIdentityBody;
  } else {
    state_ = State::kNoBody;
  }
  return true;
}

bool RequestParser::on_chunk_size_line() {
  chunk_line_bytes_ = 0;
  chunk_digits_ = false;
  if (remaining_ == 0) {
    trailer_bytes_ = 0;
    state_ = State::kTrailer;
    return true;
  }
  if (remaining_ > limits_.max_body_bytes - raw_body_bytes_) {
    fail(413, "body too large");
    return false;
  }
  state_ = State::kChunkData;
  return true;
}

bool RequestParser::emit(const char* p, size_t n, BodySink* sink) {
  if (n > limits_.max_body_bytes - body_bytes_) {
    fail(413, "body too large");
    return false;
  }
  body_bytes_ += n;
  if (sink != nullptr && !sink->on_body(p, n)) {
    if (state_ != State::kError) fail(400, "body rejected");
    return false;
  }
  return state_ != State::kError;  // the sink may have called fail() and returned true
}

bool RequestParser::deliver(const char* p, size_t n, BodySink* sink) {
  raw_body_bytes_ += n;
  if (request_.coding == ContentCoding::kIdentity) return emit(p, n, sink);
  return inflate_bytes(reinterpret_cast<const unsigned char*>(p), n, sink);
}

// Streams compressed bytes through zlib into a fixed 16 KB buffer, handing
// each filled piece to emit(), which enforces the decoded-size limit: a zip
// bomb stops at the limit without the decoded body ever being held.
bool RequestParser::inflate_bytes(const unsigned char* p, size_t n, BodySink* sink) {
  Inflater& z = *inflater_;
  if (n == 0) return true;
  z.started = true;
  if (!z.decided) {
    // "deflate" should be zlib-wrapped (RFC 9110) but some clients send raw
    // deflate; a zlib header is CM=8, CINFO<=7 and a multiple of 31.
    while (z.head_len < 2 && n > 0) {
      z.head[z.head_len++] = *p++;
      --n;
    }
    if (z.head_len < 2) return true;
    z.decided = true;
    unsigned cmf = z.head[0], flg = z.head[1];
    bool zlib_wrapped = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
    if (inflateReset2(&z.zs, zlib_wrapped ? 15 : -15) != Z_OK) {
      fail(500, "cannot initialise zlib");
      return false;
    }
    unsigned char head[2] = {z.head[0], z.head[1]};
    if (!inflate_bytes(head, 2, sink)) return false;
    if (n == 0) return true;
  }
  if (z.stream_end) {
    // Only gzip defines several members; anything else after the end is garbage.
    if (!z.gzip) {
      fail(400, "data after the end of the compressed body");
      return false;
    }
    inflateReset(&z.zs);
    z.stream_end = false;
  }
  // avail_in is 32 bits: hand over at most 1 GB at a time.
  constexpr size_t kMaxIn = size_t{1} << 30;
  while (n > kMaxIn) {
    if (!inflate_bytes(p, kMaxIn, sink)) return false;
    p += kMaxIn;
    n -= kMaxIn;
  }
  z.zs.next_in = p;
  z.zs.avail_in = static_cast<uInt>(n);
  for (;;) {
    z.zs.next_out = z.out.get();
    z.zs.avail_out = kInflateOut;
    int rc = inflate(&z.zs, Z_NO_FLUSH);
    size_t produced = kInflateOut - z.zs.avail_out;
    if (produced > 0 && !emit(reinterpret_cast<const char*>(z.out.get()), produced, sink)) {
      return false;
    }
    if (rc == Z_STREAM_END) {
      if (z.zs.avail_in == 0) {
        z.stream_end = true;
        return true;
      }
      if (!z.gzip) {
        fail(400, "data after the end of the compressed body");
        return false;
      }
      inflateReset(&z.zs);  // next gzip member
      continue;
    }
    if (rc == Z_BUF_ERROR) return true;  // input used up, no progress possible
    if (rc != Z_OK) {
      fail(400, "invalid compressed body");
      return false;
    }
    if (z.zs.avail_in == 0 && z.zs.avail_out != 0) return true;
  }
}

bool RequestParser::finish_body() {
  if (request_.coding != ContentCoding::kIdentity && inflater_ && inflater_->started &&
      !inflater_->stream_end) {
    fail(400, "truncated compressed body");
    return false;
  }
  state_ = State::kDone;
  return true;
}

RequestParser::Event RequestParser::error_event(const char* start, const char* p,
                                                size_t* consumed) {
  *consumed = static_cast<size_t>(p - start);
  return Event::kError;
}

RequestParser::Event RequestParser::feed(const char* data, size_t len, size_t* consumed,
                                         BodySink* sink) {
  const char* p = data;
  const char* const end = data + len;
  *consumed = 0;
  for (;;) {
    switch (state_) {
      case State::kStart:
      case State::kHeaderLine: {
        if (p == end) {
          *consumed = len;
          return Event::kNeedMore;
        }
        std::string_view line;
        LineResult r = take_line(p, end, &head_bytes_, &line);
        if (r == LineResult::kPartial) continue;
        if (r == LineResult::kTooLong) {
          fail(431, "header section too large");
          return error_event(data, p, consumed);
        }
        if (state_ == State::kStart) {
          if (line.empty()) continue;  // RFC 7230 §3.5: skip blank lines before a request
          if (!on_request_line(line)) return error_event(data, p, consumed);
          state_ = State::kHeaderLine;
          continue;
        }
        if (!line.empty()) {
          if (!on_header_line(line)) return error_event(data, p, consumed);
          continue;
        }
        if (!on_head_complete()) return error_event(data, p, consumed);
        *consumed = static_cast<size_t>(p - data);
        return Event::kHeadersComplete;
      }

      case State::kNoBody:
        if (!finish_body()) return error_event(data, p, consumed);
        *consumed = static_cast<size_t>(p - data);
        return Event::kMessageComplete;

      case State::kIdentityBody: {
        // Straight from the input to the sink (or the inflater): no copy.
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, end - p));
        if (n > 0) {
          if (!deliver(p, n, sink)) return error_event(data, p, consumed);
          p += n;
          remaining_ -= n;
        }
        if (remaining_ == 0) {
          if (!finish_body()) return error_event(data, p, consumed);
          *consumed = static_cast<size_t>(p - data);
          return Event::kMessageComplete;
        }
        *consumed = len;
        return Event::kNeedMore;
      }

      case State::kChunkSize:
      case State::kChunkSizeWs:
      case State::kChunkExt:
      case State::kChunkSizeLf: {
        if (p == end) {
          *consumed = len;
          return Event::kNeedMore;
        }
        char c = *p++;
        if (++chunk_line_bytes_ > limits_.max_header_bytes) {
          fail(400, "chunk size line too long");
          return error_event(data, p, consumed);
        }
        bool line_end = false;
        bool bad = false;
        switch (state_) {
          case State::kChunkSize: {
            int h = util::hex_value(c);
            if (h >= 0) {
              if (remaining_ >> 60) {
                fail(400, "chunk size overflow");
                return error_event(data, p, consumed);
              }
              remaining_ = (remaining_ << 4) | static_cast<uint64_t>(h);
              chunk_digits_ = true;
            } else if (!chunk_digits_) {
              bad = true;
            } else if (c == ';') {
              state_ = State::kChunkExt;
            } else if (is_ows(c)) {
              state_ = State::kChunkSizeWs;
            } else if (c == '\r') {
              state_ = State::kChunkSizeLf;
            } else if (c == '\n') {
              line_end = true;
            } else {
              bad = true;
            }
            break;
          }
          case State::kChunkSizeWs:
            if (c == ';') {
              state_ = State::kChunkExt;
            } else if (c == '\r') {
              state_ = State::kChunkSizeLf;
            } else if (c == '\n') {
              line_end = true;
            } else if (!is_ows(c)) {
              bad = true;
            }
            break;
          case State::kChunkExt:  // chunk extensions are ignored
            if (c == '\r') {
              state_ = State::kChunkSizeLf;
            } else if (c == '\n') {
              line_end = true;
            }
            break;
          default:  // kChunkSizeLf
            if (c == '\n') {
              line_end = true;
            } else {
              bad = true;
            }
            break;
        }
        if (bad) {
          fail(400, "bad chunk size line");
          return error_event(data, p, consumed);
        }
        if (line_end && !on_chunk_size_line()) return error_event(data, p, consumed);
        continue;
      }

      case State::kChunkData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, end - p));
        if (n > 0) {
          if (!deliver(p, n, sink)) return error_event(data, p, consumed);
          p += n;
          remaining_ -= n;
        }
        if (remaining_ == 0) {
          state_ = State::kChunkDataCr;
          continue;
        }
        *consumed = len;
        return Event::kNeedMore;
      }

      case State::kChunkDataCr:
      case State::kChunkDataLf: {
        if (p == end) {
          *consumed = len;
          return Event::kNeedMore;
        }
        char c = *p++;
        if (c == '\n') {
          state_ = State::kChunkSize;  // bare LF tolerated
        } else if (c == '\r' && state_ == State::kChunkDataCr) {
          state_ = State::kChunkDataLf;
        } else {
          fail(400, "missing CRLF after chunk data");
          return error_event(data, p, consumed);
        }
        continue;
      }

      case State::kTrailer: {
        if (p == end) {
          *consumed = len;
          return Event::kNeedMore;
        }
        std::string_view line;
        LineResult r = take_line(p, end, &trailer_bytes_, &line);
        if (r == LineResult::kPartial) continue;
        if (r == LineResult::kTooLong) {
          fail(431, "trailer section too large");
          return error_event(data, p, consumed);
        }
        if (!line.empty()) continue;  // trailer fields are accepted and ignored
        if (!finish_body()) return error_event(data, p, consumed);
        *consumed = static_cast<size_t>(p - data);
        return Event::kMessageComplete;
      }

      case State::kDone:
        *consumed = static_cast<size_t>(p - data);
        return Event::kMessageComplete;

      case State::kError:
        return error_event(data, p, consumed);
    }
  }
}

}  // namespace luacs::http
