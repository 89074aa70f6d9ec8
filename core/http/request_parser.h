// Incremental HTTP/1.x request parser for the CWMP endpoint.
//
// Pure: no I/O, no libevent. The connection pushes whatever bytes the socket
// gave it into feed(); the parser stops after the head (so the caller can look
// at method, auth and cookie before any body byte is read) and again at the
// end of the message, leaving pipelined bytes of the next request unconsumed.
//
// Tolerant where real CPEs differ (bare-LF line endings, blank lines before
// the request line, empty SOAPAction, any Content-Type, raw deflate sent as
// "deflate"), strict where framing and memory are at stake (ambiguous
// Content-Length/Transfer-Encoding, oversized heads, chunk syntax, bodies that
// grow past the limit after de-chunking or inflating).
//
// After warm-up a parser that is reset() between requests does not allocate:
// header strings, partial-line buffer and zlib state are kept and reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace luacs::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;  // request line + headers (and, separately, trailers)
  size_t max_headers = 100;
  uint64_t max_body_bytes = 16 * 1024 * 1024;  // after de-chunking AND after inflating (zip bombs)
};

enum class ContentCoding { kIdentity, kGzip, kDeflate };

struct Request {
  std::string method;
  std::string target;
  int minor_version = 1;                                     // HTTP/1.x
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, values trimmed

  // Case-insensitive, first match, "" if absent.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;

  // Derived by the parser when the head is complete:
  bool keep_alive =
      true;  // HTTP/1.1 default; Connection: close / HTTP/1.0 without keep-alive -> false
  bool chunked = false;
  std::optional<uint64_t> content_length;
  ContentCoding coding = ContentCoding::kIdentity;
  bool expect_continue = false;  // Expect: 100-continue
  std::string charset;           // from Content-Type ;charset= (unquoted), "" if absent
};

struct Error {
  int status = 400;
  std::string reason;
};

class BodySink {
 public:
  virtual ~BodySink() = default;
  // Decoded body bytes (de-chunked, inflated), in order, in pieces. Return
  // false to abort (parser -> kError, status 400 unless the sink sets
  // something else via parser.fail()).
  virtual bool on_body(const char* data, size_t len) = 0;
};

class RequestParser {
 public:
  enum class Event { kNeedMore, kHeadersComplete, kMessageComplete, kError };

  explicit RequestParser(Limits limits = {});
  ~RequestParser();
  RequestParser(RequestParser&&) noexcept;
  RequestParser& operator=(RequestParser&&) noexcept;
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Consumes bytes from data; *consumed tells how many. Returns:
  //  kNeedMore: all input consumed, message not finished;
  //  kHeadersComplete: the head has just been parsed; call feed again with
  //    the rest (even if empty: a body-less request then completes);
  //  kMessageComplete: the message (including its body) is complete; bytes
  //    after it (pipelined next request) are not consumed;
  //  kError: error() says the status (400/413/415/431/501/505; 500 if zlib
  //    cannot start; or what fail() set) and why; the connection should
  //    answer and close.
  // A request with neither Content-Length nor Transfer-Encoding has an empty
  // body (RFC 7230). Once complete or failed, further calls consume nothing
  // and repeat the same event until reset(). sink may be null (body dropped).
  Event feed(const char* data, size_t len, size_t* consumed, BodySink* sink);

  // Puts the parser in error (for the caller, or a sink from on_body).
  void fail(int status, std::string reason);

  const Request& request() const { return request_; }
  Request& request() { return request_; }
  const Error& error() const { return error_; }
  const Limits& limits() const { return limits_; }

  // True when no byte of the next request has been consumed yet (between
  // requests). Blank lines skipped before a request line do not count.
  bool idle() const;
  uint64_t body_bytes() const { return body_bytes_; }  // decoded body bytes so far

  // Ready for the next request on the same connection; keeps allocated
  // buffers and zlib state for reuse.
  void reset();

 private:
  enum class State : uint8_t {
    kStart,         // before the request line; blank lines skipped
    kHeaderLine,    // header fields
    kNoBody,        // head done, nothing to read
    kIdentityBody,  // Content-Length body
    kChunkSize,     // hex digits of a chunk-size line
    kChunkSizeWs,   // whitespace after the size: only ';' or end of line may follow
    kChunkExt,      // chunk extension: ignored up to the end of line
    kChunkSizeLf,   // CR seen at the end of a chunk-size line
    kChunkData,     // chunk bytes
    kChunkDataCr,   // CRLF after chunk bytes (a bare LF is accepted)
    kChunkDataLf,   // CR seen after chunk bytes
    kTrailer,       // trailer fields after the last chunk, up to a blank line
    kDone,
    kError,
  };
  enum class LineResult : uint8_t { kLine, kPartial, kTooLong };
  struct Inflater;

  LineResult take_line(const char*& p, const char* end, size_t* counter, std::string_view* line);
  bool on_request_line(std::string_view line);
  bool on_header_line(std::string_view line);
  bool on_head_complete();
  bool on_chunk_size_line();
  bool deliver(const char* p, size_t n, BodySink* sink);
  bool emit(const char* p, size_t n, BodySink* sink);
  bool inflate_bytes(const unsigned char* p, size_t n, BodySink* sink);
  bool finish_body();
  Event error_event(const char* start, const char* p, size_t* consumed);

  Limits limits_;
  State state_ = State::kStart;
  Request request_;
  Error error_;

  // Head parsing.
  std::string line_buf_;      // only a line split across feed() calls
  bool line_in_buf_ = false;  // line_buf_ holds a complete line already returned
  size_t head_bytes_ = 0;
  size_t trailer_bytes_ = 0;
  bool te_seen_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool content_type_seen_ = false;

  // Body.
  uint64_t remaining_ = 0;       // of the Content-Length body or current chunk
  uint64_t raw_body_bytes_ = 0;  // de-chunked, before inflating
  uint64_t body_bytes_ = 0;      // delivered to the sink
  uint32_t chunk_line_bytes_ = 0;
  bool chunk_digits_ = false;

  std::unique_ptr<Inflater> inflater_;  // created on the first compressed body
  std::vector<std::pair<std::string, std::string>> spare_headers_;  // reused strings
  size_t spare_bytes_ = 0;  // their capacity, bounded by max_header_bytes
};

}  // namespace luacs::http
