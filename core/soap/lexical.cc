#include "core/soap/lexical.h"

#include <climits>

#include "core/util/text.h"

namespace luacs::soap::lexical {
namespace {

// XML whitespace.
std::string_view trim(std::string_view s) {
  return text::trim(s, " \t\r\n");
}

}  // namespace

// Lenient numbers: surrounding whitespace and zero padding are fine ("05");
// anything else that is not a plain number (garbage, overflow) gives 0.
uint32_t parse_u32(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return 0;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > UINT32_MAX) return 0;
  }
  return static_cast<uint32_t>(v);
}

int parse_int(std::string_view s) {
  s = trim(s);
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return 0;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
    if (v > static_cast<int64_t>(INT_MAX) + 1) return 0;
  }
  if (neg) v = -v;
  if (v > INT_MAX || v < INT_MIN) return 0;
  return static_cast<int>(v);
}

bool parse_bool(std::string_view s) {
  s = trim(s);
  return s == "1" || text::iequals(s, "true");
}

// The charsets expat decodes by itself, under the name expat knows them by.
const char* expat_encoding(std::string_view e) {
  e = trim(e);
  if (e.size() >= 2 && (e.front() == '"' || e.front() == '\'') && e.back() == e.front())
    e = trim(e.substr(1, e.size() - 2));
  if (text::iequals(e, "utf-8") || text::iequals(e, "utf8")) return "UTF-8";
  if (text::iequals(e, "utf-16")) return "UTF-16";
  if (text::iequals(e, "utf-16le")) return "UTF-16LE";
  if (text::iequals(e, "utf-16be")) return "UTF-16BE";
  if (text::iequals(e, "iso-8859-1") || text::iequals(e, "iso8859-1") || text::iequals(e, "latin1"))
    return "ISO-8859-1";
  if (text::iequals(e, "us-ascii") || text::iequals(e, "ascii")) return "US-ASCII";
  return nullptr;
}

}  // namespace luacs::soap::lexical
