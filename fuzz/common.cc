#include "fuzz/common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace luacs::fuzz {

void fail(const char* file, int line, const char* what, const std::string& detail) {
  std::fprintf(stderr, "\n%s:%d: invariant broken: %s\n  %s\n", file, line, what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string_view Bytes::take(size_t n) {
  n = std::min(n, left());
  std::string_view s(reinterpret_cast<const char*>(p_), n);
  p_ += n;
  return s;
}

size_t Pieces::next(size_t left) {
  if (state_ == 0 || left == 0) return left;
  // xorshift32: any non-zero state stays non-zero.
  state_ ^= state_ << 13;
  state_ ^= state_ >> 17;
  state_ ^= state_ << 5;
  size_t n;
  switch (state_ & 3) {
    case 0:
      n = 1;
      break;
    case 1:
      n = 1 + (state_ >> 2) % 16;
      break;
    case 2:
      n = 1 + (state_ >> 2) % 512;
      break;
    default:
      n = left;
  }
  return std::min(n, left);
}

std::string corpus_dir(std::string_view sub) {
  const char* env = std::getenv("LUACS_CORPUS_DIR");
  std::string dir = env && *env ? env : LUACS_SHARED_DIR "/corpus";
  return dir + "/" + std::string(sub);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::vector<std::pair<std::string, std::string>> corpus_files(std::string_view sub,
                                                              std::string_view suffix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir(sub), ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !name.ends_with(suffix)) continue;
    out.emplace_back(name, read_file(e.path().string()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void SeedWriter::add(std::string_view data) {
  char name[32];
  std::snprintf(name, sizeof name, "/seed-%04zu", n_++);
  std::ofstream(dir_ + name, std::ios::binary).write(data.data(), std::streamsize(data.size()));
}

void write_seeds_if_asked(void (*write)(SeedWriter&)) {
  const char* dir = std::getenv("LUACS_FUZZ_SEEDS");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  SeedWriter w(dir);
  write(w);
  std::fprintf(stderr, "%zu seeds written to %s\n", w.count(), dir);
  std::exit(w.count() > 0 ? 0 : 1);
}

std::string with_control(uint8_t flags, uint32_t seed, std::string_view body) {
  std::string s;
  s += static_cast<char>(flags);
  s += static_cast<char>(seed & 0xff);
  s += static_cast<char>(seed >> 8 & 0xff);
  s += static_cast<char>(seed >> 16 & 0xff);
  s += body;
  return s;
}

}  // namespace luacs::fuzz
