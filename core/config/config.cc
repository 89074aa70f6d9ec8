#include "core/config/config.h"
#include "core/util/net.h"
#include "core/util/text.h"

#include <arpa/inet.h>
#include <ini.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

namespace luacs::config {

namespace {

using std::chrono::milliseconds;

// A bad value. The handler turns it into "bad value '<v>' for '<key>' in
// [section]: <reason>", leaving the value out for secrets.
struct ValueError {
  std::string reason;
};

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

constexpr std::string_view kSections[] = {
    "cwmp", "limits", "auth", "auth.devices", "store",   "policy", "files",
    "nbi",  "stun",   "xmpp", "metrics",      "control", "log",    "connection_request"};

bool known_section(std::string_view s) {
  for (const auto k : kSections)
    if (k == s) return true;
  return false;
}

struct Error {
  int line = 0;
  std::string message;
};

// Everything one parse needs, passed to inih as both the stream and the
// handler's user pointer.
struct Parser {
  std::string_view text;
  const std::string& name;
  Config cfg;

  size_t pos = 0;
  int line = 0;  // the line the reader last returned: the handler's line
  std::optional<Error> error;
  std::map<std::string, int> seen;  // "section\nkey" -> line

  // Lines of keys that cross-checks point at.
  int mode_line = 0, listen_line = 0, username_line = 0, password_line = 0, xmpp_jid_line = 0;
  int tls_cert_line = 0, tls_client_auth_line = 0, certificate_alone_line = 0;
  int nbi_listen_line = 0, files_listen_line = 0, files_url_line = 0;
  std::optional<std::string> username, password;
  std::vector<CpeCredential> device_credentials;

  Parser(std::string_view t, const std::string& n) : text(t), name(n) { cfg.path = n; }

  void fail(int at, std::string message) {
    if (!error) error = Error{at, std::move(message)};
  }

  void on_key(std::string_view section, std::string_view key, std::string_view value);
  void finish();
};

unsigned unsigned_in(std::string_view v, uint64_t min, uint64_t max) {
  return static_cast<unsigned>(number_in(v, min, max));
}

constexpr milliseconds kDay{24 * 3'600'000};

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

// Every key but [auth.devices] entries. A setter throws ValueError on a bad
// value.
struct Key {
  std::string_view section, name;
  void (*set)(Parser&, std::string_view);
};

const Key kKeys[] = {
    {"cwmp", "listen",
     [](Parser& p, std::string_view v) {
       p.cfg.listen = listen_list(v);
       p.listen_line = p.line;
     }},
    {"cwmp", "workers",
     [](Parser& p, std::string_view v) { p.cfg.workers = unsigned_in(v, 0, 256); }},
    {"cwmp", "listen_backlog",
     [](Parser& p, std::string_view v) { p.cfg.listen_backlog = unsigned_in(v, 1, 1 << 20); }},
    {"cwmp", "cookie_name",
     [](Parser& p, std::string_view v) {
       if (!is_token(v) || v.size() > 64)
         throw ValueError{"not a cookie name (1..64 letters, digits or !#$%&'*+-.^_`|~)"};
       p.cfg.cookie_name = std::string(v);
     }},
    {"cwmp", "tls_cert",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_cert = path_list(v);
       p.tls_cert_line = p.line;
     }},
    {"cwmp", "tls_key",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_key = path_list(v);
       p.tls_cert_line = p.line;
     }},
    {"cwmp", "tls_min_version",
     [](Parser& p, std::string_view v) {
       if (v != "1.0" && v != "1.1" && v != "1.2" && v != "1.3")
         throw ValueError{"expected 1.0, 1.1, 1.2 or 1.3"};
       p.cfg.tls_min_version = std::string(v);
     }},
    {"cwmp", "tls_ciphers",
     [](Parser& p, std::string_view v) { p.cfg.tls_ciphers = std::string(v); }},
    {"cwmp", "tls_ciphersuites",
     [](Parser& p, std::string_view v) { p.cfg.tls_ciphersuites = std::string(v); }},
    {"cwmp", "tls_session_cache",
     [](Parser& p, std::string_view v) { p.cfg.tls_session_cache = unsigned_in(v, 0, 10'000'000); }},
    {"cwmp", "tls_session_tickets",
     [](Parser& p, std::string_view v) { p.cfg.tls_session_tickets = bool_in(v); }},
    {"cwmp", "tls_ticket_key_rotation",
     [](Parser& p, std::string_view v) {
       p.cfg.tls_ticket_key_rotation = duration_in(v, milliseconds{60'000}, 7 * kDay);
     }},
    {"cwmp", "tls_handshake_timeout",
     [](Parser& p, std::string_view v) { p.cfg.tls_handshake_timeout = timeout_in(v); }},
    {"cwmp", "tls_client_ca",
     [](Parser& p, std::string_view v) { p.cfg.tls_client_ca = std::string(v); }},
    {"cwmp", "tls_client_auth",
     [](Parser& p, std::string_view v) {
       if (v != "none" && v != "optional" && v != "required")
         throw ValueError{"expected none, optional or required"};
       p.cfg.tls_client_auth = std::string(v);
       p.tls_client_auth_line = p.line;
     }},
    {"cwmp", "tls_crl", [](Parser& p, std::string_view v) { p.cfg.tls_crl = std::string(v); }},
    {"cwmp", "tls_cert_binding",
     [](Parser& p, std::string_view v) {
       if (v == "none")
         p.cfg.tls_cert_binding = CertBinding::kNone;
       else if (v == "serial")
         p.cfg.tls_cert_binding = CertBinding::kSerial;
       else if (v == "device_id")
         p.cfg.tls_cert_binding = CertBinding::kDeviceId;
       else
         throw ValueError{"expected none, serial or device_id"};
     }},
    {"cwmp", "tls_cert_binding_in",
     [](Parser& p, std::string_view v) {
       if (v == "cn")
         p.cfg.tls_cert_binding_in = CertBindingField::kCommonName;
       else if (v == "san")
         p.cfg.tls_cert_binding_in = CertBindingField::kSan;
       else if (v == "any")
         p.cfg.tls_cert_binding_in = CertBindingField::kAny;
       else
         throw ValueError{"expected cn, san or any"};
     }},

    {"limits", "max_body_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.max_body_bytes = size_in(v, 1 << 10, uint64_t{16} << 30);
     }},
    {"limits", "max_header_bytes",
     [](Parser& p, std::string_view v) { p.cfg.max_header_bytes = size_in(v, 1 << 10, 16 << 20); }},
    {"limits", "xml_max_depth",
     [](Parser& p, std::string_view v) { p.cfg.xml_max_depth = number_in(v, 8, 1024); }},
    {"limits", "rpcs_per_session",
     [](Parser& p, std::string_view v) { p.cfg.rpcs_per_session = unsigned_in(v, 1, 1'000'000); }},
    {"limits", "session_timeout",
     [](Parser& p, std::string_view v) { p.cfg.session_timeout = timeout_in(v); }},
    {"limits", "idle_timeout",
     [](Parser& p, std::string_view v) { p.cfg.idle_timeout = timeout_in(v); }},
    {"limits", "header_timeout",
     [](Parser& p, std::string_view v) { p.cfg.header_timeout = timeout_in(v); }},
    {"limits", "body_timeout",
     [](Parser& p, std::string_view v) { p.cfg.body_timeout = timeout_in(v); }},
    {"limits", "keepalive_timeout",
     [](Parser& p, std::string_view v) { p.cfg.keepalive_timeout = timeout_in(v); }},
    {"limits", "max_sessions",
     [](Parser& p, std::string_view v) { p.cfg.max_sessions = unsigned_in(v, 1, 100'000'000); }},
    {"limits", "max_connections",
     [](Parser& p, std::string_view v) { p.cfg.max_connections = unsigned_in(v, 1, 100'000'000); }},
    {"limits", "max_queue_delay",
     [](Parser& p, std::string_view v) {
       p.cfg.max_queue_delay =
           v == "0" ? milliseconds{0} : duration_in(v, milliseconds{1}, milliseconds{60'000});
     }},
    {"limits", "retry_after_s",
     [](Parser& p, std::string_view v) { p.cfg.retry_after_s = unsigned_in(v, 1, 86'400); }},

    {"auth", "mode",
     [](Parser& p, std::string_view v) {
       if (v == "none")
         p.cfg.auth_mode = AuthMode::kNone;
       else if (v == "digest")
         p.cfg.auth_mode = AuthMode::kDigest;
       else
         throw ValueError{"expected none or digest"};
       p.mode_line = p.line;
     }},
    {"auth", "realm",
     [](Parser& p, std::string_view v) {
       if (!is_realm(v))
         throw ValueError{"not a realm (1..128 printable ASCII characters, no '\"' or '\\')"};
       p.cfg.realm = std::string(v);
     }},
    {"auth", "allow_basic",
     [](Parser& p, std::string_view v) {
       if (v == "tls") {
         p.cfg.allow_basic = BasicAuth::kTls;
         return;
       }
       try {
         p.cfg.allow_basic = bool_in(v) ? BasicAuth::kAlways : BasicAuth::kOff;
       } catch (const ValueError&) {
         throw ValueError{"expected false, tls (inside TLS only) or true (also on plain HTTP)"};
       }
     }},
    {"auth", "certificate_alone",
     [](Parser& p, std::string_view v) {
       p.cfg.certificate_alone = bool_in(v);
       p.certificate_alone_line = p.line;
     }},
    {"auth", "nonce_lifetime",
     [](Parser& p, std::string_view v) {
       const auto d = duration_in(v, milliseconds{1000}, kDay);
       if (d.count() % 1000 != 0) throw ValueError{"must be a whole number of seconds"};
       p.cfg.nonce_lifetime = std::chrono::duration_cast<std::chrono::seconds>(d);
     }},
    {"auth", "username",
     [](Parser& p, std::string_view v) {
       if (v.empty()) throw ValueError{"must not be empty"};
       if (v.find(':') != std::string_view::npos) throw ValueError{"must not contain ':'"};
       p.username = std::string(v);
       p.username_line = p.line;
     }},
    {"auth", "password",  // never echoed: see on_key()
     [](Parser& p, std::string_view v) {
       if (v.empty()) throw ValueError{"must not be empty"};
       p.password = std::string(v);
       p.password_line = p.line;
     }},

    {"store", "dsn", [](Parser& p, std::string_view v) { p.cfg.store_dsn = std::string(v); }},
    {"store", "sql_dir", [](Parser& p, std::string_view v) { p.cfg.sql_dir = std::string(v); }},
    {"store", "flush_interval",
     [](Parser& p, std::string_view v) {
       p.cfg.store_flush_interval = duration_in(v, milliseconds{1}, milliseconds{10'000});
     }},
    {"store", "batch_rows",
     [](Parser& p, std::string_view v) { p.cfg.store_batch_rows = unsigned_in(v, 1, 100'000); }},
    {"store", "max_pending",
     [](Parser& p, std::string_view v) {
       p.cfg.store_max_pending = unsigned_in(v, 100, 100'000'000);
     }},
    {"store", "cache_devices",
     [](Parser& p, std::string_view v) {
       p.cfg.store_cache_devices = unsigned_in(v, 0, 100'000'000);
     }},
    {"store", "cache_memory",
     [](Parser& p, std::string_view v) {
       p.cfg.store_cache_bytes = size_in(v, 1 << 20, uint64_t{1} << 40);
     }},
    {"store", "max_backlog",
     [](Parser& p, std::string_view v) {
       p.cfg.store_max_backlog = unsigned_in(v, 1, 100'000'000);
     }},
    {"store", "session_log_retention",
     [](Parser& p, std::string_view v) {
       p.cfg.session_log_retention = duration_in(v, milliseconds{60'000}, kDay * 3650);
     }},

    {"policy", "dir", [](Parser& p, std::string_view v) { p.cfg.policy_dir = std::string(v); }},
    {"policy", "max_instructions",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_max_instructions = number_in(v, 1000, uint64_t{1} << 40);
     }},
    {"policy", "time_limit",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_time_limit = duration_in(v, milliseconds{1}, milliseconds{60'000});
     }},
    {"policy", "memory_limit",
     [](Parser& p, std::string_view v) {
       p.cfg.policy_memory_limit = size_in(v, 1 << 20, uint64_t{16} << 30);
     }},
    {"policy", "batch_size",
     [](Parser& p, std::string_view v) { p.cfg.policy_batch_size = unsigned_in(v, 1, 1024); }},

    {"files", "listen",
     [](Parser& p, std::string_view v) {
       const auto l = listen_list(v);
       if (l.size() != 1) throw ValueError{"expected one address, host:port or https://host:port"};
       p.cfg.files_listen = l[0];
       p.files_listen_line = p.line;
     }},
    {"files", "url",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && v.substr(0, 7) != "http://" && v.substr(0, 8) != "https://")
         throw ValueError{"expected an http:// or https:// URL"};
       std::string url(v);
       while (!url.empty() && url.back() == '/') url.pop_back();
       p.cfg.files_url = std::move(url);
       p.files_url_line = p.line;
     }},
    {"files", "dir", [](Parser& p, std::string_view v) { p.cfg.files_dir = std::string(v); }},
    {"files", "secret", [](Parser& p, std::string_view v) { p.cfg.files_secret = std::string(v); }},

    {"nbi", "listen",
     [](Parser& p, std::string_view v) {
       const auto l = listen_list(v);
       if (l.size() != 1) throw ValueError{"expected one address, host:port or https://host:port"};
       p.cfg.nbi_listen = l[0];
       p.nbi_listen_line = p.line;
     }},
    {"nbi", "db_connections",
     [](Parser& p, std::string_view v) { p.cfg.nbi_db_connections = unsigned_in(v, 1, 64); }},
    {"nbi", "max_body",
     [](Parser& p, std::string_view v) { p.cfg.nbi_max_body = size_in(v, 1024, uint64_t{1} << 30); }},
    {"nbi", "max_file_bytes",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_max_file_bytes = size_in(v, 1024, uint64_t{1} << 40);
     }},
    {"nbi", "online_window",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_online_window = duration_in(v, milliseconds{1000}, kDay * 365);
     }},
    {"nbi", "event_buffer",
     [](Parser& p, std::string_view v) {
       p.cfg.nbi_event_buffer = size_in(v, 4096, uint64_t{1} << 30);
     }},
    {"stun", "listen",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_listen.clear();
       if (v.empty()) return;
       p.cfg.stun_listen = listen_list(v);
       for (const auto& l : p.cfg.stun_listen)
         if (l.tls) throw ValueError{"STUN is UDP: no https:// prefix"};
     }},
    {"stun", "retries",
     [](Parser& p, std::string_view v) { p.cfg.stun_retries = unsigned_in(v, 1, 10); }},
    {"stun", "retry_interval",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_retry_interval = duration_in(v, milliseconds{10}, milliseconds{60'000});
     }},
    {"stun", "replay_window",
     [](Parser& p, std::string_view v) {
       p.cfg.stun_replay_window = duration_in(v, milliseconds{1}, milliseconds{3'600'000});
     }},
    {"connection_request", "allow",
     [](Parser& p, std::string_view v) { p.cfg.cr_allow = cidr_list(v); }},
    {"connection_request", "deny",
     [](Parser& p, std::string_view v) { p.cfg.cr_deny = cidr_list(v); }},
    {"connection_request", "ports",
     [](Parser& p, std::string_view v) { p.cfg.cr_ports = port_ranges(v); }},
    {"connection_request", "timeout",
     [](Parser& p, std::string_view v) {
       p.cfg.cr_timeout = duration_in(v, milliseconds{100}, milliseconds{60'000});
     }},
    {"connection_request", "max_concurrent",
     [](Parser& p, std::string_view v) { p.cfg.cr_max_concurrent = unsigned_in(v, 1, 100'000); }},
    {"connection_request", "username",
     [](Parser& p, std::string_view v) { p.cfg.cr_username = std::string(v); }},
    {"connection_request", "password",  // never echoed: see on_key()
     [](Parser& p, std::string_view v) { p.cfg.cr_password = std::string(v); }},
    {"connection_request", "allow_basic",
     [](Parser& p, std::string_view v) { p.cfg.cr_allow_basic = bool_in(v); }},

    {"metrics", "allow",
     [](Parser& p, std::string_view v) {
       std::vector<std::string> out;
       for (auto item : util::split_list(v)) {
         if (!util::parse_cidr(item)) throw ValueError{"'" + std::string(item) + "' is not a CIDR (192.0.2.0/24, ::1/128)"};
         out.emplace_back(item);
       }
       p.cfg.metrics_allow = std::move(out);
     }},

    {"xmpp", "jid",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && !is_jid(v))
         throw ValueError{"not a JID (user@domain or user@domain/resource)"};
       p.cfg.xmpp_jid = std::string(v);
       p.xmpp_jid_line = p.line;
     }},
    {"xmpp", "password",
     [](Parser& p, std::string_view v) { p.cfg.xmpp_password = std::string(v); }},
    {"xmpp", "server",
     [](Parser& p, std::string_view v) {
       if (!v.empty() && !is_host_port(v))
         throw ValueError{"expected host or host:port (port 1..65535)"};
       p.cfg.xmpp_server = std::string(v);
     }},
    {"xmpp", "tls",
     [](Parser& p, std::string_view v) {
       if (v == "required")
         p.cfg.xmpp_tls = XmppTls::kRequired;
       else if (v == "optional")
         p.cfg.xmpp_tls = XmppTls::kOptional;
       else if (v == "off")
         p.cfg.xmpp_tls = XmppTls::kOff;
       else
         throw ValueError{"expected required, optional or off"};
     }},
    {"xmpp", "timeout",
     [](Parser& p, std::string_view v) {
       p.cfg.xmpp_timeout = duration_in(v, milliseconds{100}, milliseconds{300'000});
     }},

    {"control", "socket",
     [](Parser& p, std::string_view v) { p.cfg.control_socket = std::string(v); }},

    {"log", "level",
     [](Parser& p, std::string_view v) {
       if (v != "debug" && v != "info" && v != "warn" && v != "error")
         throw ValueError{"expected debug, info, warn or error"};
       p.cfg.log_level = std::string(v);
     }},
    {"log", "file", [](Parser& p, std::string_view v) { p.cfg.log_file = std::string(v); }},
};

void Parser::on_key(std::string_view section, std::string_view key, std::string_view value) {
  if (section.empty()) {
    fail(line, "key '" + std::string(key) + "' outside of any section");
    return;
  }
  const std::string id = std::string(section) + '\n' + std::string(key);
  if (const auto it = seen.find(id); it != seen.end()) {
    fail(line, "duplicated key '" + std::string(key) + "' in [" + std::string(section) +
                   "] (first set on line " + std::to_string(it->second) + ")");
    return;
  }
  seen.emplace(id, line);

  if (section == "auth.devices") {
    if (!is_device_id(key)) {
      fail(line, "bad device id '" + std::string(key) +
                     "' in [auth.devices] (letters, digits, '_', '-' and %XX escapes, "
                     "as luacs spells device ids)");
      return;
    }
    const auto colon = value.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size()) {
      // The value holds a password: never echo it.
      fail(line, "bad entry for device '" + std::string(key) +
                     "' in [auth.devices]: expected <username>:<password>");
      return;
    }
    device_credentials.push_back({std::string(value.substr(0, colon)),
                                  std::string(value.substr(colon + 1)), std::string(key)});
    return;
  }

  const Key* known = nullptr;
  for (const Key& k : kKeys)
    if (k.section == section && k.name == key) known = &k;
  if (!known) {
    fail(line, "unknown key '" + std::string(key) + "' in [" + std::string(section) + "]");
    return;
  }
  try {
    known->set(*this, value);
  } catch (const ValueError& e) {
    const bool secret =
        (section == "auth" && key == "password") || (section == "store" && key == "dsn") ||
        (section == "files" && key == "secret") || (section == "xmpp" && key == "password") ||
        (section == "connection_request" && key == "password");
    std::string msg = "bad value ";
    if (!secret) msg += "'" + std::string(value) + "' ";
    msg += "for '" + std::string(key) + "' in [" + std::string(section) + "]: " + e.reason;
    fail(line, std::move(msg));
  }
}

// Checks that span keys, once the whole file has been read.
void Parser::finish() {
  if (username && !password) fail(username_line, "[auth] username is set without a password");
  if (password && !username) fail(password_line, "[auth] password is set without a username");
  if (username && password) cfg.credentials.push_back({*username, *password, ""});
  for (auto& c : device_credentials) cfg.credentials.push_back(std::move(c));

  if (cfg.auth_mode == AuthMode::kDigest && cfg.credentials.empty())
    fail(mode_line,
         "mode = digest needs credentials: set username and password in [auth], or add "
         "[auth.devices] entries");
  if (!cfg.xmpp_jid.empty() && cfg.xmpp_password.empty())
    fail(xmpp_jid_line, "[xmpp] jid is set without a password");
  for (const auto& l : cfg.listen) {
    if (l.tls && (cfg.tls_cert.empty() || cfg.tls_key.empty())) {
      fail(listen_line, "an https:// listener needs tls_cert and tls_key in [cwmp]");
      break;
    }
  }
  // The API and file ports serve the CWMP port's certificates.
  const bool certs = !cfg.tls_cert.empty() && !cfg.tls_key.empty();
  if (cfg.nbi_listen.tls && !certs)
    fail(nbi_listen_line, "an https:// [nbi] listen needs tls_cert and tls_key in [cwmp]");
  if (cfg.files_listen.tls && !certs)
    fail(files_listen_line, "an https:// [files] listen needs tls_cert and tls_key in [cwmp]");
  if (cfg.files_listen.tls && cfg.files_url.rfind("http://", 0) == 0)
    fail(files_url_line,
         "[files] url is http:// but [files] listen is https://: CPEs would send plain HTTP "
         "to a TLS port");
  if (cfg.tls_cert.size() != cfg.tls_key.size())
    fail(tls_cert_line, std::to_string(cfg.tls_cert.size()) + " tls_cert files but " +
                            std::to_string(cfg.tls_key.size()) +
                            " tls_key files (they pair up in order)");
  if (cfg.tls_client_auth != "none" && cfg.tls_client_ca.empty())
    fail(tls_client_auth_line,
         "tls_client_auth = " + cfg.tls_client_auth + " needs tls_client_ca (a PEM file of CAs)");
  // Without a binding any certificate of the CA would log in as any device.
  if (cfg.certificate_alone &&
      (cfg.tls_client_ca.empty() || cfg.tls_cert_binding == CertBinding::kNone))
    fail(certificate_alone_line,
         "certificate_alone needs [cwmp] tls_client_ca and a tls_cert_binding other than none");
}

// inih's reader (fgets-like). It hands inih one line per call, which is what
// lets the handler know its line number (inih is not built with
// INI_HANDLER_LINENO). It also
//  - strips leading blanks, so inih never joins an indented line to the
//    previous value (its multi-line mode would make that a duplicated key);
//  - checks [section] names here, so an unknown section is reported at its
//    header even when it is empty;
//  - reports lines longer than inih's buffer instead of letting inih split
//    them (which would silently shift every later line number).
char* read_line(char* str, int num, void* stream) {
  auto* p = static_cast<Parser*>(stream);
  if (p->pos >= p->text.size() || num < 3) return nullptr;
  try {
    const auto nl = p->text.find('\n', p->pos);
    const size_t end = nl == std::string_view::npos ? p->text.size() : nl;
    std::string_view line = p->text.substr(p->pos, end - p->pos);
    p->pos = nl == std::string_view::npos ? p->text.size() : nl + 1;
    ++p->line;

    if (p->line == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);

    if (line.find('\0') != std::string_view::npos) {
      p->fail(p->line, "NUL byte in line");
      line = {};
    }
    const size_t room = static_cast<size_t>(num) - 2;  // '\n' and '\0'
    if (line.size() > room) {
      p->fail(p->line, "line too long (more than " + std::to_string(room) + " characters)");
      line = {};
    }
    if (!line.empty() && line.front() == '[') {
      const auto close = line.find(']');
      if (close != std::string_view::npos) {
        const auto section = line.substr(1, close - 1);
        if (!known_section(section))
          p->fail(p->line, "unknown section [" + std::string(section) + "]");
      }
    }
    if (!line.empty()) std::memcpy(str, line.data(), line.size());
    str[line.size()] = '\n';
    str[line.size() + 1] = '\0';
    return str;
  } catch (...) {  // never unwind through C
    p->fail(p->line, "out of memory");
    return nullptr;
  }
}

int on_ini_key(void* user, const char* section, const char* name, const char* value) {
  auto* p = static_cast<Parser*>(user);
  try {
    p->on_key(section ? section : "", name ? name : "", value ? value : "");
  } catch (...) {  // never unwind through C
    p->fail(p->line, "out of memory");
  }
  return 1;
}

}  // namespace

Config parse(std::string_view text, const std::string& name) {
  Parser p(text, name);
  const int rc = ini_parse_stream(&read_line, &p, &on_ini_key, &p);
  if (rc < 0) throw ConfigError(name + ": cannot parse (out of memory)");
  if (!p.error) p.finish();
  // inih reports only syntax errors here (the handler always returns 1);
  // report whichever error comes first in the file.
  if (p.error && (rc == 0 || p.error->line <= rc))
    throw ConfigError(name + ":" + std::to_string(p.error->line) + ": " + p.error->message);
  if (rc > 0)
    throw ConfigError(name + ":" + std::to_string(rc) +
                      ": syntax error (expected 'key = value', '[section]' or a comment)");
  return std::move(p.cfg);
}

Config load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) throw ConfigError(path + ": cannot open: " + std::strerror(err));
  return parse(text, path);
}

}  // namespace luacs::config
