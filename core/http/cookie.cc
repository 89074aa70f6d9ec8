#include "core/http/cookie.h"
#include "core/util/text.h"

namespace luacs::http {
namespace {}  // namespace

std::string_view find_cookie(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t sep = header.find_first_of(";,");
    std::string_view pair = header.substr(0, sep);
    header = sep == std::string_view::npos ? std::string_view() : header.substr(sep + 1);
    size_t eq = pair.find('=');
    std::string_view n = text::trim(pair.substr(0, eq));
    if (n.empty() || n.front() == '$' || n != name) continue;
    std::string_view v =
        eq == std::string_view::npos ? std::string_view() : text::trim(pair.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return {};
}

std::string set_cookie_value(std::string_view name, std::string_view value, std::string_view path) {
  std::string out;
  out.reserve(name.size() + value.size() + path.size() + 20);
  out.append(name).append("=").append(value);
  if (!path.empty()) out.append("; Path=").append(path);
  out.append("; HttpOnly");
  return out;
}

}  // namespace luacs::http
