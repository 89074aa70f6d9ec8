// A small HDR-style latency histogram: log2 ranges split into 128 linear
// sub-buckets, so every recorded value is kept to within 1/128 (< 0.8 %) of
// itself, from 1 µs to hours, in a fixed 58 KB table. Recording is an
// increment; merging threads is adding tables.
#pragma once

#include <cstdint>
#include <vector>

namespace luacs::loadgen {

class Histogram {
 public:
  Histogram();

  void record(uint64_t value);
  void merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // The value at percentile p (0..100): the highest value equivalent to the
  // bucket holding that rank, capped by the exact maximum. 0 when empty.
  uint64_t percentile(double p) const;

  static constexpr unsigned kSubBits = 7;

  // Exposed for tests: value -> bucket -> the bucket's value range.
  static unsigned bucket_of(uint64_t value);
  static uint64_t bucket_low(unsigned bucket);
  static uint64_t bucket_high(unsigned bucket);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace luacs::loadgen
