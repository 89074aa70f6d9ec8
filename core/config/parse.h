// Internal to core/config: the ini parser's pieces, split by what they do
// -- the value parsers (values.cc), the table of keys (keys.cc), the
// parser that reads the file and checks keys against each other
// (config.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.h"

namespace luacs::config::ini {

using std::chrono::milliseconds;

// A bad value. The handler turns it into "bad value '<v>' for '<key>' in
// [section]: <reason>", leaving the value out for secrets.
struct ValueError {
  std::string reason;
};

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

// ---- values (values.cc); each throws ValueError

inline constexpr milliseconds kDay{24 * 3'600'000};

std::optional<uint64_t> parse_digits(std::string_view s);
uint64_t number_in(std::string_view s, uint64_t min, uint64_t max);
std::string size_text(uint64_t v);
uint64_t size_in(std::string_view s, uint64_t min, uint64_t max);
std::string duration_text(milliseconds d);
milliseconds duration_in(std::string_view s, milliseconds min, milliseconds max);
bool bool_in(std::string_view s);
ListenAddress listen_address(std::string_view s);
std::vector<ListenAddress> listen_list(std::string_view s);
bool is_token(std::string_view s);
bool is_realm(std::string_view s);
bool is_device_id(std::string_view s);
bool is_jid(std::string_view s);
bool is_host_port(std::string_view s);
unsigned unsigned_in(std::string_view v, uint64_t min, uint64_t max);
milliseconds timeout_in(std::string_view v);
std::vector<std::string> cidr_list(std::string_view v);
std::vector<std::string> path_list(std::string_view v);
std::vector<std::pair<uint16_t, uint16_t>> port_ranges(std::string_view v);

// ---- keys (keys.cc)

// Every key but [auth.devices] entries. A setter throws ValueError on a bad
// value.
struct Key {
  std::string_view section, name;
  void (*set)(Parser&, std::string_view);
};

std::span<const Key> keys();

}  // namespace luacs::config::ini
