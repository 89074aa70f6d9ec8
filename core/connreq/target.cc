#include "core/connreq/target.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace luacs::connreq {

namespace {

uint16_t port_of(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  return 0;
}

bool in_any(const std::vector<util::Cidr>& blocks, const sockaddr* sa) {
  for (const auto& c : blocks)
    if (c.contains(sa)) return true;
  return false;
}

std::vector<util::Cidr> blocks(const std::vector<std::string>& texts) {
  std::vector<util::Cidr> out;
  for (const auto& t : texts)
    if (auto c = util::parse_cidr(t)) out.push_back(*c);
  return out;
}

// Letters, digits, '-' and '.': what a DNS name in a URL may hold (no
// percent-encoding, no IDN: a CPE reports what DHCP/DNS gave it).
bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// RFC 3986 path and query characters, percent-escapes included; no
// spaces or control characters that could split the request line.
bool is_target(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '#' || c == '"' || c == '<' || c == '>' || c == '\\' ||
        c == '^' || c == '`' || c == '{' || c == '|' || c == '}')
      return false;
  }
  return true;
}

}  // namespace

bool Rules::port_allowed(uint16_t port) const {
  for (const auto& [lo, hi] : ports)
    if (port >= lo && port <= hi) return true;
  return false;
}

std::optional<std::string> Rules::refuse(const sockaddr* sa) const {
  const std::string addr = util::address_of(util::format_peer(sa));
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
    return "address family is not IPv4 or IPv6";
  if (in_any(deny, sa) || !in_any(allow, sa)) return "address " + addr + " is denied";
  const uint16_t port = port_of(sa);
  if (!port_allowed(port)) return "port " + std::to_string(port) + " is not allowed";
  return std::nullopt;
}

Rules rules_from(const config::Config& cfg) {
  return Rules{blocks(cfg.cr_allow), blocks(cfg.cr_deny), cfg.cr_ports};
}

Url parse_url(std::string_view s) {
  if (s.size() > 2048) throw BadTarget("URL longer than 2048 characters");
  if (s.size() < 7 || (s.substr(0, 7) != "http://" && s.substr(0, 7) != "HTTP://"))
    throw BadTarget("not an http:// URL");
  s.remove_prefix(7);
  const auto slash = s.find_first_of("/?");
  std::string_view authority = s.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? std::string_view{} : s.substr(slash);
  if (authority.find('@') != std::string_view::npos) throw BadTarget("user information in the URL");

  Url u;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw BadTarget("unclosed '[' in the host");
    u.host = std::string(authority.substr(1, close - 1));
    const auto after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') throw BadTarget("junk after the IPv6 address");
    if (!after.empty()) port = after.substr(1);
    in6_addr a6{};
    if (inet_pton(AF_INET6, u.host.c_str(), &a6) != 1) throw BadTarget("bad IPv6 address");
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    in_addr a4{};
    u.numeric = inet_pton(AF_INET, u.host.c_str(), &a4) == 1;
    if (u.host.empty()) throw BadTarget("no host in the URL");
    if (!u.numeric && !is_host_name(u.host)) throw BadTarget("bad host name");
  }
  if (authority.find(':') != std::string_view::npos && authority.back() == ':')
    throw BadTarget("empty port");
  if (!port.empty()) {
    unsigned v = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || v > 65535) throw BadTarget("bad port");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535 || port.size() > 5) throw BadTarget("bad port");
    u.port = static_cast<uint16_t>(v);
  }
  if (!is_target(rest)) throw BadTarget("bad characters in the path");
  u.target =
      rest.empty() ? "/" : (rest.front() == '?' ? "/" + std::string(rest) : std::string(rest));
  u.host_header = std::string(authority);
  return u;
}

}  // namespace luacs::connreq
