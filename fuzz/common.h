// What the fuzz targets share: a check that stops the run (libFuzzer then
// saves the input as a crash), the schedule that feeds a streaming parser in
// pieces, a reader of steering bytes, and the seeds.
//
// Seeds: every target writes its own, built from ../shared/corpus (and
// from luacs's own writers where the corpus has nothing: gzip bodies, STUN
// datagrams). When LUACS_FUZZ_SEEDS names a directory, the target's
// LLVMFuzzerInitialize writes them there and exits; scripts/fuzz does that
// before every run, so the corpus is never copied into the repository.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace luacs::fuzz {

[[noreturn]] void fail(const char* file, int line, const char* what, const std::string& detail);

// An invariant of the code under test: when it does not hold, the input is a
// finding (printed, then abort(), which libFuzzer reports as a crash).
#define FUZZ_CHECK(cond, detail)                                                      \
  do {                                                                                \
    if (!(cond)) ::luacs::fuzz::fail(__FILE__, __LINE__, #cond, std::string(detail)); \
  } while (0)

// Steering bytes, taken from the front; 0 once they run out, so a short
// input is still a valid one.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  uint8_t byte() { return p_ == end_ ? 0 : *p_++; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | byte() << 8); }
  // Up to n bytes (fewer at the end).
  std::string_view take(size_t n);
  std::string_view rest() { return take(left()); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Where a streaming parser's input is cut: piece lengths drawn from a
// small PRNG seeded by the input's steering bytes, mostly short (1 byte,
// a few bytes, a few hundred) and sometimes everything left. Seed 0 feeds
// the whole input at once.
class Pieces {
 public:
  explicit Pieces(uint32_t seed) : state_(seed) {}
  size_t next(size_t left);

 private:
  uint32_t state_;
};

// The corpus directory (../shared/corpus/<sub>) and its files ending in
// `suffix`, sorted by name: (name, contents).
std::string corpus_dir(std::string_view sub);
std::vector<std::pair<std::string, std::string>> corpus_files(std::string_view sub,
                                                              std::string_view suffix);
std::string read_file(const std::string& path);

class SeedWriter {
 public:
  explicit SeedWriter(std::string dir) : dir_(std::move(dir)) {}
  void add(std::string_view data);
  size_t count() const { return n_; }

 private:
  std::string dir_;
  size_t n_ = 0;
};

// From LLVMFuzzerInitialize: when LUACS_FUZZ_SEEDS is set, runs `write`
// into that directory and exits.
void write_seeds_if_asked(void (*write)(SeedWriter&));

// `control` steering bytes (flags, then a 24-bit piece seed) in front of
// `body`: the layout of the streaming targets' inputs.
std::string with_control(uint8_t flags, uint32_t seed, std::string_view body);
constexpr size_t kControlBytes = 4;

}  // namespace luacs::fuzz
