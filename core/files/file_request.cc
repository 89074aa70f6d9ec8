#include "core/files/file_request.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

#include "core/files/catalog.h"
#include "core/util/text.h"

namespace luacs::files {
namespace {

constexpr uint64_t kHuge = std::numeric_limits<uint64_t>::max();

// All of s as a decimal number; kHuge when it does not fit; nullopt when
// s is not all digits.
std::optional<uint64_t> decimal(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (const char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc::result_out_of_range) return kHuge;
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

bool lower_hex(std::string_view s) {
  for (const char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::optional<FileTarget> parse_target(std::string_view target) {
  if (const auto q = target.find_first_of("?#"); q != std::string_view::npos)
    target = target.substr(0, q);
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && text::iequals(target.substr(0, scheme.size()), scheme)) {
      target.remove_prefix(scheme.size());
      const auto slash = target.find('/');
      if (slash == std::string_view::npos) return std::nullopt;
      target.remove_prefix(slash);
      break;
    }
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  target.remove_prefix(1);
  const auto slash = target.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  FileTarget t{target.substr(0, slash), target.substr(slash + 1)};
  if (t.token.size() != kTokenLength || !lower_hex(t.token) || !valid_name(t.name))
    return std::nullopt;
  return t;
}

RangeAnswer parse_range(std::string_view header, uint64_t size) {
  using Kind = RangeAnswer::Kind;
  header = text::trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() < kUnit.size() || !text::iequals(header.substr(0, kUnit.size()), kUnit))
    return {};
  std::string_view spec = text::trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return {};  // several ranges: the whole file
  const auto dash = spec.find('-');
  if (dash == std::string_view::npos) return {};
  const std::string_view a = text::trim(spec.substr(0, dash));
  const std::string_view b = text::trim(spec.substr(dash + 1));
  if (a.empty()) {  // suffix: the last n bytes
    const auto n = decimal(b);
    if (!n) return {};
    if (*n == 0 || size == 0) return {Kind::kUnsatisfiable, {}};
    return {Kind::kPartial, {size - std::min(*n, size), size - 1}};
  }
  const auto first = decimal(a);
  if (!first) return {};
  uint64_t last = kHuge;
  if (!b.empty()) {
    const auto l = decimal(b);
    if (!l || *l < *first) return {};
    last = *l;
  }
  if (*first >= size) return {Kind::kUnsatisfiable, {}};
  return {Kind::kPartial, {*first, std::min(last, size - 1)}};
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view tag = text::trim(if_none_match.substr(0, comma));
    if (tag == "*") return true;
    if (tag.size() > 2 && tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

bool if_range_allows(std::string_view if_range, std::string_view etag) {
  if_range = text::trim(if_range);
  return if_range.empty() || if_range == etag;
}

std::string_view content_type_for(std::string_view name) {
  struct Ext {
    std::string_view ext, type;
  };
  static constexpr Ext kTypes[] = {
      {".txt", "text/plain; charset=utf-8"},
      {".rsc", "text/plain; charset=utf-8"},
      {".alter", "text/plain; charset=utf-8"},
      {".cfg", "text/plain; charset=utf-8"},
      {".conf", "text/plain; charset=utf-8"},
      {".xml", "application/xml"},
      {".json", "application/json"},
      {".gz", "application/gzip"},
      {".tgz", "application/gzip"},
      {".zip", "application/zip"},
      {".tar", "application/x-tar"},
  };
  for (const Ext& e : kTypes) {
    if (name.size() > e.ext.size() && text::iequals(name.substr(name.size() - e.ext.size()), e.ext))
      return e.type;
  }
  return "application/octet-stream";  // .npk, .bin, .img, ...
}

std::string http_date(std::time_t t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string redact_token(std::string_view token) {
  return std::string(token.substr(0, 4)) + "\u2026";
}

}  // namespace luacs::files
