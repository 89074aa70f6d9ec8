// Internal to core/files: what a file request asks for — which file, which
// bytes, under which condition — read from the request's target and
// headers. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace luacs::files {

// Length of the URL tokens: 16 lower-case hex digits (64 bits).
inline constexpr size_t kTokenLength = 16;

struct FileTarget {
  std::string_view token, name;
};

// "/<token>/<name>", also in absolute form ("http://host/<token>/<name>");
// a query ("?...") is ignored. nullopt for anything else: another depth,
// a token that is not 16 lower-case hex digits, a name valid_name() refuses
// (which also turns away "..", percent-escapes and slashes).
std::optional<FileTarget> parse_target(std::string_view target);

struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
  uint64_t length() const { return last - first + 1; }
};

struct RangeAnswer {
  enum class Kind { kWhole, kPartial, kUnsatisfiable } kind = Kind::kWhole;
  ByteRange range;  // kPartial
};

// A Range header against a representation of `size` bytes (RFC 9110 14.2):
// a single "bytes=a-b", "bytes=a-" or "bytes=-n" gives kPartial (b clamped
// to the end); one that starts past the end, a zero suffix, or any range of
// an empty file gives kUnsatisfiable. No header, another unit, bad syntax
// (b < a included) and several ranges give kWhole: the whole file is sent,
// which the RFC allows.
RangeAnswer parse_range(std::string_view header, uint64_t size);

// Whether If-None-Match (a list of entity tags, or "*") matches `etag`
// (quoted) by weak comparison.
bool etag_matches(std::string_view if_none_match, std::string_view etag);

// Whether a Range may be honoured under If-Range: no If-Range, or one equal
// to `etag` (strong comparison). A date or another tag: send the whole file.
bool if_range_allows(std::string_view if_range, std::string_view etag);

// A Content-Type for a file of the folder, by its extension.
std::string_view content_type_for(std::string_view name);

// RFC 9110 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::time_t t);

// A token fit for a log line: its first 4 characters and "…".
std::string redact_token(std::string_view token);

}  // namespace luacs::files
