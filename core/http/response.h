// HTTP/1.1 response heads for the CWMP endpoint and the file server.
//
// The ACS only ever answers: 200 with a SOAP envelope, 204 to end a session,
// 401 challenges, 4xx/5xx from the request parser, 405/503 with Allow or
// Retry-After. The file server adds 206/304/416 and bodies it sends itself
// (append_head). append_response() writes the whole message into the
// connection's output string (which keeps its capacity between responses).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace luacs::http {

// "OK", "No Content", ...; "Unknown" for a status we never send.
std::string_view reason_phrase(int status);

struct Header {
  std::string_view name, value;
};

// Appends "HTTP/1.1 <status> <reason>\r\n", Content-Length (always, also 0),
// Content-Type if non-empty, "Connection: close" when !keep_alive, the extra
// headers (e.g. {"Connection", "keep-alive"} for an HTTP/1.0 keep-alive
// client), "\r\n", then body.
// 204 and 304 carry no body: body and content_type are ignored and
// "Content-Length: 0" is written
// (what CWMP ACSs send with the 204 that ends a session). 1xx responses are
// the status line, the extra headers and the blank line only.
// CR and LF inside extra header values are written as spaces, so a value that
// came from a policy cannot split the response.
void append_response(std::string& out, int status, std::string_view content_type,
                     std::initializer_list<Header> extra, std::string_view body, bool keep_alive);
// The same with headers built at run time.
void append_response(std::string& out, int status, std::string_view content_type,
                     std::span<const Header> extra, std::string_view body, bool keep_alive);

// The head alone, for a body the caller sends itself (a file) or none at
// all (a HEAD answer, a 304): the status line, Content-Length when given
// (as is: also for 204 and 304), Content-Type if non-empty, "Connection:
// close" when !keep_alive, the extra headers, "\r\n". 1xx as above.
void append_head(std::string& out, int status, std::string_view content_type,
                 std::span<const Header> extra, std::optional<uint64_t> content_length,
                 bool keep_alive);

// "HTTP/1.1 100 Continue\r\n\r\n", the interim answer to Expect: 100-continue.
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace luacs::http
