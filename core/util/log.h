// The server log: one line per message, safe from any thread.
//
//   2024-05-01T12:34:56.789Z INFO session end 00E04C-W5%2D2100G-D8365F659C6E ...
//
// Each line is written with a single write(2) on an O_APPEND descriptor, so
// lines from several threads never interleave. Callers that build a message
// check enabled() first, so a disabled level costs one relaxed atomic load.
// Control characters in a message (a CPE-supplied string with a newline in
// it) are escaped, so one message is always one line; values in quoted
// fields go through quoted(), so none can forge another field.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace luacs::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug" | "info" | "warn" | "error" (also "warning"); nullopt otherwise.
std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);  // "DEBUG", "INFO", "WARN", "ERROR"

void set_level(Level level);
// By name, as in [log] level; throws std::invalid_argument on an unknown name.
void set_level(std::string_view name);
Level level();

// Appends to `path` (created 0640 if missing); "" = stderr. Calling it again
// with the same path reopens the file (log rotation). Lines being written
// while it runs go to the old or the new file, never elsewhere.
// Throws std::runtime_error("<path>: cannot open: <strerror>") on failure,
// in which case the log keeps its current destination.
void set_file(const std::string& path);

namespace detail {
extern std::atomic<int> g_level;
}

inline bool enabled(Level level) {
  return static_cast<int>(level) >= detail::g_level.load(std::memory_order_relaxed);
}

// A value for a field of a line, in double quotes: `reason=` + quoted(v).
// '"' and '\' inside are escaped (\" and \\), so a value someone else chose
// (a CPE's event code, a certificate's subject) cannot close its field and
// add one of its own. Control characters are escaped by write().
std::string quoted(std::string_view value);

// Writes one line if `level` is enabled.
void write(Level level, std::string_view message);

inline void debug(std::string_view message) {
  if (enabled(Level::kDebug)) write(Level::kDebug, message);
}
inline void info(std::string_view message) {
  if (enabled(Level::kInfo)) write(Level::kInfo, message);
}
inline void warn(std::string_view message) {
  if (enabled(Level::kWarn)) write(Level::kWarn, message);
}
// A warning about something a peer did (a malformed request, a failed
// login): at most set_warnings_per_source() of them a minute per `source`
// (its address, without the port), so that whoever sends bad input does not
// also choose how much the log grows. The rest are counted; the next
// warning let through for that source ends with ` suppressed=N`.
void warn_from(std::string_view source, std::string_view message);
// 0 = no limit. Default 20 a minute ([log] warnings_per_source); `window`
// other than a minute is for tests.
void set_warnings_per_source(unsigned per_window,
                             std::chrono::milliseconds window = std::chrono::minutes(1));
// Warnings not written by warn_from(), since start.
uint64_t warnings_suppressed();

inline void error(std::string_view message) {
  if (enabled(Level::kError)) write(Level::kError, message);
}

}  // namespace luacs::log
