// Cookie header parsing as CPEs actually send it, and the Set-Cookie value
// the ACS hands out for its session id.
#pragma once

#include <string>
#include <string_view>

namespace luacs::http {

// The value of cookie `name` in a Cookie header, "" if absent. Loose on
// purpose: pairs are separated by ';' or ',' (some devices), whitespace is
// trimmed, RFC 2965 attributes ($Version, $Path, $Domain, ...) are skipped, a
// value in double quotes is returned without them, the first match wins and
// names compare case-sensitively. Thomson sends
// `$Version="0"; ID=218_THOM_TR69_ID;$Path=/`.
std::string_view find_cookie(std::string_view cookie_header, std::string_view name);

// "name=value; Path=/; HttpOnly", for a Set-Cookie header.
std::string set_cookie_value(std::string_view name, std::string_view value,
                             std::string_view path = "/");

}  // namespace luacs::http
