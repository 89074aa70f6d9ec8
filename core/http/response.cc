#include "core/http/response.h"

#include <charconv>

namespace luacs::http {
namespace {

void append_number(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  (void)ec;  // 24 chars always suffice for 64 bits
  out.append(buf, static_cast<size_t>(end - buf));
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  size_t start = out.size();
  out.append(value);
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    for (size_t i = start; i < out.size(); ++i) {
      if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
    }
  }
  out.append("\r\n", 2);
}

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void append_response(std::string& out, int status, std::string_view content_type,
                     std::initializer_list<Header> extra, std::string_view body, bool keep_alive) {
  append_response(out, status, content_type, std::span<const Header>(extra.begin(), extra.size()),
                  body, keep_alive);
}

void append_head(std::string& out, int status, std::string_view content_type,
                 std::span<const Header> extra, std::optional<uint64_t> content_length,
                 bool keep_alive) {
  out.append("HTTP/1.1 ", 9);
  append_number(out, static_cast<uint64_t>(status < 0 ? 0 : status));
  out.push_back(' ');
  out.append(reason_phrase(status));
  out.append("\r\n", 2);
  if (status >= 100 && status < 200) {
    for (const Header& h : extra) append_header(out, h.name, h.value);
    out.append("\r\n", 2);
    return;
  }
  if (content_length) {
    out.append("Content-Length: ", 16);
    append_number(out, *content_length);
    out.append("\r\n", 2);
  }
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  if (!keep_alive) out.append("Connection: close\r\n", 19);
  for (const Header& h : extra) append_header(out, h.name, h.value);
  out.append("\r\n", 2);
}

void append_response(std::string& out, int status, std::string_view content_type,
                     std::span<const Header> extra, std::string_view body, bool keep_alive) {
  const bool bodiless = status == 204 || status == 304;
  if (bodiless) {
    body = {};
    content_type = {};
  }
  append_head(out, status, content_type, extra, body.size(), keep_alive);
  if (status < 100 || status >= 200) out.append(body);
}

}  // namespace luacs::http
