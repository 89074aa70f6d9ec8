#include "core/util/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace luacs::log {
namespace {

std::string temp_path(const char* name) {
  return ::testing::TempDir() + "luacs_test_log_" + std::to_string(::getpid()) + "_" + name;
}

std::string slurp(const std::string& path) {
  std::string text;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      out.push_back(text.substr(pos) + "<no newline>");
      break;
    }
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// "2024-05-01T12:34:56.789Z LEVEL message"
bool well_formed(const std::string& line, std::string_view level, std::string_view message) {
  if (line.size() < 25) return false;
  const std::string_view ts(line.data(), 24);
  for (size_t i = 0; i < ts.size(); ++i) {
    const char c = ts[i];
    const bool ok = (i == 4 || i == 7)     ? c == '-'
                    : (i == 10)            ? c == 'T'
                    : (i == 13 || i == 16) ? c == ':'
                    : (i == 19)            ? c == '.'
                    : (i == 23)            ? c == 'Z'
                                           : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return line.substr(24) == " " + std::string(level) + " " + std::string(message);
}

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    set_file("");
    set_level(Level::kInfo);
  }
};

TEST_F(LogTest, Levels) {
  EXPECT_EQ(parse_level("debug"), Level::kDebug);
  EXPECT_EQ(parse_level("warning"), Level::kWarn);
  EXPECT_FALSE(parse_level("verbose"));
  set_level("error");
  EXPECT_EQ(level(), Level::kError);
  EXPECT_FALSE(enabled(Level::kWarn));
  EXPECT_TRUE(enabled(Level::kError));
  EXPECT_THROW(set_level("loud"), std::invalid_argument);
  EXPECT_EQ(level(), Level::kError) << "a bad name changes nothing";
}

TEST_F(LogTest, LinesLevelsAndEscaping) {
  const std::string path = temp_path("lines");
  std::remove(path.c_str());
  set_file(path);
  set_level(Level::kInfo);
  debug("hidden");
  info("hello world");
  warn("two\nlines\r\x01 and a\ttab");
  error("bad");
  const auto lines = lines_of(slurp(path));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(well_formed(lines[0], "INFO", "hello world")) << lines[0];
  EXPECT_TRUE(well_formed(lines[1], "WARN", "two\\nlines\\r\\x01 and a\ttab")) << lines[1];
  EXPECT_TRUE(well_formed(lines[2], "ERROR", "bad")) << lines[2];
  std::remove(path.c_str());
}

TEST_F(LogTest, AppendsAndReopens) {
  const std::string a = temp_path("a"), b = temp_path("b");
  std::remove(a.c_str());
  std::remove(b.c_str());
  set_file(a);
  info("one");
  set_file(b);
  info("two");
  set_file(a);  // back, appending
  info("three");
  EXPECT_EQ(lines_of(slurp(a)).size(), 2u);
  EXPECT_EQ(lines_of(slurp(b)).size(), 1u);
  EXPECT_THROW(set_file("/nonexistent-dir/x.log"), std::runtime_error);
  info("four");  // still goes to a
  EXPECT_EQ(lines_of(slurp(a)).size(), 3u);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST_F(LogTest, ThreadsNeverInterleave) {
  const std::string path = temp_path("threads");
  std::remove(path.c_str());
  set_file(path);
  constexpr int kThreads = 8, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      // Long enough that a torn write would show.
      const std::string msg = "thread " + std::to_string(t) + " " + std::string(300, 'a' + t);
      for (int i = 0; i < kLines; ++i) info(msg);
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = lines_of(slurp(path));
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  std::vector<int> per_thread(kThreads);
  for (const auto& line : lines) {
    const int t = line.size() > 37 ? line[37] - '0' : -1;  // "<ts> INFO thread N"
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    ASSERT_TRUE(
        well_formed(line, "INFO", "thread " + std::to_string(t) + " " + std::string(300, 'a' + t)))
        << line;
    ++per_thread[t];
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kLines);
  std::remove(path.c_str());
}

// A value someone else chose cannot close its field and forge another.
// Whoever sends bad input does not also choose how much the log grows.
TEST_F(LogTest, WarningsAreLimitedPerSourceAndTheRestCounted) {
  const std::string path = temp_path("limited");
  std::remove(path.c_str());
  set_file(path);
  set_level(Level::kInfo);
  set_warnings_per_source(3, std::chrono::milliseconds(300));
  const uint64_t before = warnings_suppressed();
  for (int i = 0; i < 10; ++i) warn_from("192.0.2.1", "bad " + std::to_string(i));
  warn_from("192.0.2.2", "other");  // another source has its own share
  EXPECT_EQ(warnings_suppressed() - before, 7u);
  std::this_thread::sleep_for(std::chrono::milliseconds(350));  // the next window
  warn_from("192.0.2.1", "again");
  set_warnings_per_source(0);
  for (int i = 0; i < 5; ++i) warn_from("192.0.2.1", "unlimited");
  set_warnings_per_source(20);
  const auto lines = lines_of(slurp(path));
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_TRUE(well_formed(lines[0], "WARN", "bad 0")) << lines[0];
  EXPECT_TRUE(well_formed(lines[2], "WARN", "bad 2")) << lines[2];
  EXPECT_TRUE(well_formed(lines[3], "WARN", "other")) << lines[3];
  EXPECT_TRUE(well_formed(lines[4], "WARN", "again suppressed=7")) << lines[4];
  EXPECT_TRUE(well_formed(lines[9], "WARN", "unlimited")) << lines[9];
  std::remove(path.c_str());
}

TEST(LogQuoted, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(quoted("1 BOOT"), "\"1 BOOT\"");
  EXPECT_EQ(quoted(""), "\"\"");
  EXPECT_EQ(quoted("x\" result=\"completed"), "\"x\\\" result=\\\"completed\"");
  EXPECT_EQ(quoted("a\\"), "\"a\\\\\"") << "a trailing backslash cannot eat the closing quote";
}

}  // namespace
}  // namespace luacs::log
