#include "core/store/pg_text.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/util/json.h"

namespace luacs::store {

// Runs of ordinary bytes are copied in one append; only the rare bytes
// that need an escape are handled one by one.
void ArrayLiteral::add(std::string_view s) {
  std::string& t = sep();
  t += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"' || c == '\\' || c == '\0') {
      t.append(s.data() + run, i - run);
      if (c != '\0') {
        t += '\\';
        t += c;
      }
      run = i + 1;
    }
  }
  t.append(s.data() + run, s.size() - run);
  t += '"';
}

void ArrayLiteral::add_escaped(std::string_view s) {
  std::string& t = sep();
  t += '"';
  t.append(s);
  t += '"';
}

void ArrayLiteral::add(int64_t n) {
  append_int(sep(), n);
}

std::string ArrayLiteral::take() {
  text_ += '}';
  std::string out = std::move(text_);
  text_.assign(1, '{');
  n_ = 0;
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case 0:
        break;  // jsonb refuses \u0000
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void append_json_string_in_array(std::string& out, std::string_view s) {
  // The JSON string, then quoted once more for the array literal: every " and
  // \ of it gets a backslash.
  thread_local std::string json;
  json.clear();
  append_json_string(json, s);
  for (char c : json) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
}

void append_int(std::string& out, int64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void append_epoch_seconds(std::string& out, int64_t ms) {
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  append_int(out, ms / 1000);
  const int frac = static_cast<int>(ms % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
}

int64_t to_epoch_ms(Time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Time from_epoch_ms(int64_t ms) {
  return Time(std::chrono::duration_cast<Time::duration>(std::chrono::milliseconds(ms)));
}

Time from_epoch_seconds(double s) {
  return from_epoch_ms(std::llround(s * 1000.0));
}

std::string valid_json(std::string json) {
  if (json.empty()) return "{}";
  if (nlohmann::json::accept(json)) return json;
  return util::json_text(nlohmann::json(json));
}

}  // namespace luacs::store
