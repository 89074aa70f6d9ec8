#include "core/nbi/router.h"

#include <optional>

namespace luacs::nbi {

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int v = 0;
      for (size_t k = 1; k <= 2; ++k) {
        const char h = s[i + k];
        v <<= 4;
        if (h >= '0' && h <= '9') {
          v |= h - '0';
        } else if (h >= 'a' && h <= 'f') {
          v |= h - 'a' + 10;
        } else if (h >= 'A' && h <= 'F') {
          v |= h - 'A' + 10;
        } else {
          return std::nullopt;
        }
      }
      c = static_cast<char>(v);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

std::optional<std::vector<std::string>> split_path(std::string_view path) {
  std::vector<std::string> out;
  if (path.empty() || path.front() != '/') return std::nullopt;
  path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    auto seg = percent_decode(path.substr(0, slash), false);
    if (!seg) return std::nullopt;
    out.push_back(std::move(*seg));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  // "/devices/" is "/devices".
  if (out.size() > 1 && out.back().empty()) out.pop_back();
  return out;
}

void Router::add(Route r) {
  std::string_view p = r.pattern;
  p.remove_prefix(1);
  r.segments.clear();
  while (true) {
    const auto slash = p.find('/');
    r.segments.emplace_back(p.substr(0, slash));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  routes_.push_back(std::move(r));
}

Router::Match Router::match(std::string_view method,
                            const std::vector<std::string>& segments) const {
  Match m;
  for (const auto& r : routes_) {
    if (r.segments.size() != segments.size()) continue;
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      const auto& s = r.segments[i];
      const bool placeholder = s.size() > 1 && s.front() == '{';
      ok = placeholder ? !segments[i].empty() : s == segments[i];
    }
    if (!ok) continue;
    if (r.method != method) {
      if (m.allow.find(r.method) == std::string::npos)
        m.allow += (m.allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    // A literal route wins over a placeholder one of the same shape
    // ("/policy/reload" before "/policy/{x}"): routes are added literal first.
    m.route = &r;
    m.params.clear();
    for (size_t i = 0; i < segments.size(); ++i)
      if (r.segments[i].size() > 1 && r.segments[i].front() == '{') m.params.push_back(segments[i]);
    return m;
  }
  return m;
}

}  // namespace luacs::nbi
