#include "core/util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace luacs::log {

namespace detail {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
}

namespace {

// The descriptor lines go to. It starts as stderr; the first set_file()
// gives the log its own descriptor number, and later set_file() calls point
// that same number at another file with dup2(), which is atomic. So a writer
// never sees a closed (or worse, reused) descriptor, and no lock is taken on
// the write path.
std::atomic<int> g_fd{STDERR_FILENO};
std::mutex g_file_mutex;  // serialises set_file()
int g_owned_fd = -1;      // guarded by g_file_mutex

constexpr char kHex[] = "0123456789abcdef";

bool needs_escape(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

void append_escaped(std::string& out, std::string_view msg) {
  size_t start = 0;
  for (size_t i = 0; i < msg.size(); ++i) {
    const auto c = static_cast<unsigned char>(msg[i]);
    if (!needs_escape(c)) continue;
    out.append(msg.data() + start, i - start);
    start = i + 1;
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(msg.data() + start, msg.size() - start);
}

}  // namespace

std::string quoted(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

namespace {

// "YYYY-MM-DDTHH:MM:SS.mmmZ". gmtime_r() runs once per second per thread.
void append_timestamp(std::string& out) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  thread_local time_t cached_sec = -1;
  thread_local char cached[24];
  if (ts.tv_sec != cached_sec) {
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    if (strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &t) == 0) cached[0] = '\0';
    cached_sec = ts.tv_sec;
  }
  out += cached;
  const long ms = ts.tv_nsec / 1'000'000;
  out += '.';
  out += static_cast<char>('0' + ms / 100);
  out += static_cast<char>('0' + ms / 10 % 10);
  out += static_cast<char>('0' + ms % 10);
  out += 'Z';
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report a failing log
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  return std::nullopt;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarn:
      return "WARN";
    case Level::kError:
      return "ERROR";
  }
  return "?";
}

void set_level(Level level) {
  detail::g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void set_level(std::string_view name) {
  const auto l = parse_level(name);
  if (!l) throw std::invalid_argument("unknown log level '" + std::string(name) + "'");
  set_level(*l);
}

Level level() {
  return static_cast<Level>(detail::g_level.load(std::memory_order_relaxed));
}

void set_file(const std::string& path) {
  std::lock_guard lock(g_file_mutex);
  if (path.empty()) {
    if (g_owned_fd >= 0) ::dup2(STDERR_FILENO, g_owned_fd);
    return;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
  if (g_owned_fd < 0) {
    g_owned_fd = fd;
    g_fd.store(fd, std::memory_order_release);
    return;
  }
  if (::dup2(fd, g_owned_fd) < 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(path + ": cannot open: " + std::strerror(err));
  }
  ::close(fd);
}

void write(Level level, std::string_view message) {
  if (!enabled(level)) return;
  // One buffer per thread, reused: no allocation once it has grown.
  thread_local std::string line;
  line.clear();
  append_timestamp(line);
  line += ' ';
  line += level_name(level);
  line += ' ';
  append_escaped(line, message);
  line += '\n';
  write_all(g_fd.load(std::memory_order_acquire), line.data(), line.size());
  // Don't let one huge message pin memory for the life of the thread.
  if (line.capacity() > 64 * 1024) std::string().swap(line);
}

}  // namespace luacs::log
