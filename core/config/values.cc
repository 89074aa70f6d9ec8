// The value parsers of the ini file (core/config/parse.h).
#include <arpa/inet.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/config/parse.h"
#include "core/util/net.h"
#include "core/util/text.h"

namespace luacs::config::ini {

// Digits only: no sign, no spaces, no hex.
std::optional<uint64_t> parse_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

uint64_t number_in(std::string_view s, uint64_t min, uint64_t max) {
  bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits) throw ValueError{"not a number"};
  const auto v = parse_digits(s);
  if (!v || *v < min || *v > max)
    throw ValueError{"out of range (" + std::to_string(min) + ".." + std::to_string(max) + ")"};
  return *v;
}

std::string size_text(uint64_t v) {
  if (v >= (1u << 30) && v % (1u << 30) == 0) return std::to_string(v >> 30) + "G";
  if (v >= (1u << 20) && v % (1u << 20) == 0) return std::to_string(v >> 20) + "M";
  if (v >= (1u << 10) && v % (1u << 10) == 0) return std::to_string(v >> 10) + "K";
  return std::to_string(v);
}

// "16777216", "16384K", "16M", "1G" (binary multiples, either case).
uint64_t size_in(std::string_view s, uint64_t min, uint64_t max) {
  const auto digits_end = s.find_first_not_of("0123456789");
  const std::string_view num = s.substr(0, digits_end);
  const std::string_view suffix =
      digits_end == std::string_view::npos ? std::string_view{} : s.substr(digits_end);
  unsigned shift = 0;
  if (suffix.empty())
    shift = 0;
  else if (text::iequals(suffix, "k"))
    shift = 10;
  else if (text::iequals(suffix, "m"))
    shift = 20;
  else if (text::iequals(suffix, "g"))
    shift = 30;
  else
    shift = 64;
  const auto v = parse_digits(num);
  if (!v || shift == 64)
    throw ValueError{"not a size (a number with an optional K, M or G suffix)"};
  const std::string range = "out of range (" + size_text(min) + ".." + size_text(max) + ")";
  if (*v > (max >> shift)) throw ValueError{range};
  const uint64_t bytes = *v << shift;
  if (bytes < min) throw ValueError{range};
  return bytes;
}

std::string duration_text(milliseconds d) {
  const auto ms = d.count();
  if (ms % 86'400'000 == 0) return std::to_string(ms / 86'400'000) + "d";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// "30" (seconds), "30s", "500ms", "5m", "1h", "7d".
milliseconds duration_in(std::string_view s, milliseconds min, milliseconds max) {
  const auto digits_end = s.find_first_not_of("0123456789");
  const std::string_view num = s.substr(0, digits_end);
  const std::string_view unit =
      digits_end == std::string_view::npos ? std::string_view{} : s.substr(digits_end);
  uint64_t scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1000;
  else if (unit == "ms")
    scale = 1;
  else if (unit == "m")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  else if (unit == "d")
    scale = 86'400'000;
  const auto v = parse_digits(num);
  if (!v || scale == 0)
    throw ValueError{
        "not a duration (a number of seconds, or with a unit: 500ms, 30s, 5m, 1h, 7d)"};
  if (*v == 0) throw ValueError{"must be greater than 0"};
  const std::string range = "out of range (" + duration_text(min) + ".." + duration_text(max) + ")";
  if (*v > static_cast<uint64_t>(max.count()) / scale) throw ValueError{range};
  const milliseconds d{static_cast<int64_t>(*v * scale)};
  if (d < min) throw ValueError{range};
  return d;
}

bool bool_in(std::string_view s) {
  for (const char* t : {"true", "yes", "on", "1"})
    if (text::iequals(s, t)) return true;
  for (const char* f : {"false", "no", "off", "0"})
    if (text::iequals(s, f)) return false;
  throw ValueError{"not a boolean (true/false, yes/no, on/off, 1/0)"};
}

ListenAddress listen_address(std::string_view s) {
  ListenAddress a;
  const ValueError bad{"bad address '" + std::string(s) +
                       "' (expected IPv4:port or [IPv6]:port, optionally prefixed by "
                       "http:// or https://)"};
  if (s.substr(0, 8) == "https://") {
    a.tls = true;
    s.remove_prefix(8);
  } else if (s.substr(0, 7) == "http://") {
    s.remove_prefix(7);
  }
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') throw bad;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr6) != 1) throw bad;
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) throw bad;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    in_addr addr4{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &addr4) != 1) throw bad;
  }
  const auto p = parse_digits(port);
  // Port 0 asks the kernel for a free port (tests, benchmarks); luacs logs
  // the port it got.
  if (!p || *p > 65535) throw ValueError{"bad port in '" + std::string(s) + "' (0..65535)"};
  a.host = std::string(host);
  a.port = static_cast<uint16_t>(*p);
  return a;
}

std::vector<ListenAddress> listen_list(std::string_view s) {
  std::vector<ListenAddress> out;
  size_t pos = 0;
  while (true) {
    const auto comma = s.find(',', pos);
    const auto item = text::trim(
        s.substr(pos, comma == std::string_view::npos ? s.npos : comma - pos), " \t\r\n");
    if (item.empty()) throw ValueError{"empty entry in the list"};
    ListenAddress a = listen_address(item);
    // Port 0 (any free port) may be asked for twice: an http:// and an
    // https:// listener in a test.
    for (const auto& b : out)
      if (b.host == a.host && b.port == a.port && a.port != 0)
        throw ValueError{"'" + std::string(item) + "' is listed twice"};
    out.push_back(std::move(a));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

// RFC 7230 tchar, which is what a cookie-name must be.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok) return false;
  }
  return true;
}

// The realm goes inside a quoted-string of WWW-Authenticate and into HA1.
bool is_realm(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (const char c : s)
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

// Device ids as cwmp::device_id() writes them: [A-Za-z0-9_] and %XX escapes,
// joined by '-'.
bool is_device_id(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '%';
    if (!ok) return false;
  }
  return true;
}

// A JID as luacs' own account: local@domain[/resource], printable, no blanks
// (the server checks the rest with stringprep).
bool is_jid(std::string_view s) {
  if (s.size() > 3071) return false;
  for (const char c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  const auto at = s.find('@');
  const auto slash = s.find('/');
  return at != std::string_view::npos && at > 0 &&
         (slash == std::string_view::npos || slash > at + 1) && at + 1 < s.size() &&
         slash != s.size() - 1;
}

// "xmpp.example.net", "xmpp.example.net:5222", "192.0.2.1:5222", "[2001:db8::1]:5222".
bool is_host_port(std::string_view s) {
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    host = s.substr(1, close - 1);
    const auto rest = s.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || rest.size() == 1)) return false;
    if (!rest.empty()) port = rest.substr(1);
  } else if (const auto colon = s.rfind(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (host.empty() || host.size() > 253) return false;
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  if (port.empty()) return true;
  const auto p = parse_digits(port);
  return p && *p >= 1 && *p <= 65535;
}

unsigned unsigned_in(std::string_view v, uint64_t min, uint64_t max) {
  return static_cast<unsigned>(number_in(v, min, max));
}

milliseconds timeout_in(std::string_view v) {
  return duration_in(v, milliseconds{1}, kDay);
}

// A comma-separated list of CIDRs; an empty value is an empty list.
std::vector<std::string> cidr_list(std::string_view v) {
  std::vector<std::string> out;
  for (auto item : util::split_list(v)) {
    if (!util::parse_cidr(item))
      throw ValueError{"'" + std::string(item) + "' is not a CIDR (192.0.2.0/24, ::1/128)"};
    out.emplace_back(item);
  }
  return out;
}

// A comma-separated list of file paths (none empty).
std::vector<std::string> path_list(std::string_view v) {
  std::vector<std::string> out;
  for (auto item : util::split_list(v)) out.emplace_back(item);
  if (out.empty()) throw ValueError{"expected one or more file paths, comma-separated"};
  return out;
}

// "80, 1024-65535": ports and inclusive ranges, 1..65535.
std::vector<std::pair<uint16_t, uint16_t>> port_ranges(std::string_view v) {
  std::vector<std::pair<uint16_t, uint16_t>> out;
  for (auto item : util::split_list(v)) {
    const auto dash = item.find('-');
    const auto lo = parse_digits(text::trim(item.substr(0, dash)));
    const auto hi =
        dash == std::string_view::npos ? lo : parse_digits(text::trim(item.substr(dash + 1)));
    if (!lo || !hi || *lo < 1 || *hi > 65535 || *lo > *hi)
      throw ValueError{"'" + std::string(item) + "' is not a port or a range (80, 1024-65535)"};
    out.emplace_back(static_cast<uint16_t>(*lo), static_cast<uint16_t>(*hi));
  }
  return out;
}

}  // namespace luacs::config::ini
