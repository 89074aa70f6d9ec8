// Where luacs may send a connection request.
//
// The ConnectionRequestURL comes from the device, so it is untrusted: an
// attacker who controls a CPE (or its Inform) must not be able to make luacs
// send requests into the ACS's own network. [connection_request] allow/deny
// decide which addresses luacs contacts (deny wins) and `ports` which ports;
// the URL itself is parsed strictly (http:// only, no user info).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.h"
#include "core/util/net.h"

namespace luacs::connreq {

class BadTarget : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Rules {
  std::vector<util::Cidr> allow;
  std::vector<util::Cidr> deny;
  std::vector<std::pair<uint16_t, uint16_t>> ports;  // inclusive ranges

  // Why luacs will not contact `sa` (its port included), or nullopt when it
  // may: "address 127.0.0.1 is denied", "port 22 is not allowed".
  std::optional<std::string> refuse(const sockaddr* sa) const;
  bool port_allowed(uint16_t port) const;
};

// The rules [connection_request] configures (config::load has checked the
// CIDRs already).
Rules rules_from(const config::Config& cfg);

// A ConnectionRequestURL taken apart.
struct Url {
  std::string host;     // without brackets: "192.0.2.1", "2001:db8::1", "cpe.example.net"
  bool numeric = true;  // host is an IPv4/IPv6 literal (else a name to resolve)
  uint16_t port = 80;
  std::string target;       // path and query: "/cr?x=1" ("/" when absent)
  std::string host_header;  // as the URL spells it: "192.0.2.1:7547", "[2001:db8::1]:7547"
};

// Throws BadTarget with the reason ("not an http:// URL", "bad port"...).
Url parse_url(std::string_view url);

}  // namespace luacs::connreq
