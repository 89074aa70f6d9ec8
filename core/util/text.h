// Small ASCII text helpers shared by the protocol code (HTTP headers, SOAP
// values, configuration) and the benchmarks. Locale-free on purpose.
#pragma once

#include <string_view>

namespace luacs::text {

inline char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// [A-Za-z0-9._-]+, not starting with '.', at most 200 characters: safe in a
// URL path segment and as a file name in a folder, no traversal possible
// (the names of the files luacs serves).
inline bool safe_file_name(std::string_view name) {
  if (name.empty() || name.size() > 200 || name.front() == '.') return false;
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Case-insensitive (ASCII) equality.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// `s` without leading and trailing characters from `chars` (HTTP's optional
// whitespace by default).
inline std::string_view trim(std::string_view s, std::string_view chars = " \t") {
  const auto first = s.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

// Whether a comma-separated header value ("keep-alive, Upgrade") holds
// `token`, compared case-insensitively.
inline bool has_token(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace luacs::text
