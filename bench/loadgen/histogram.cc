#include "bench/loadgen/histogram.h"

#include <bit>
#include <cmath>

namespace luacs::loadgen {
namespace {

constexpr uint64_t kSub = uint64_t{1} << Histogram::kSubBits;  // 128
// Values below 2*kSub have a bucket each; above, every power of two gets kSub.
constexpr unsigned kBuckets = (64 - Histogram::kSubBits) * kSub + kSub;

unsigned shift_of(uint64_t value) {
  unsigned width = static_cast<unsigned>(std::bit_width(value));
  return width > Histogram::kSubBits + 1 ? width - Histogram::kSubBits - 1 : 0;
}

}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

unsigned Histogram::bucket_of(uint64_t value) {
  unsigned shift = shift_of(value);
  return static_cast<unsigned>(shift * kSub + (value >> shift));
}

uint64_t Histogram::bucket_low(unsigned bucket) {
  if (bucket < 2 * kSub) return bucket;
  unsigned shift = static_cast<unsigned>(bucket / kSub - 1);
  return (bucket - shift * kSub) << shift;
}

uint64_t Histogram::bucket_high(unsigned bucket) {
  if (bucket < 2 * kSub) return bucket;
  unsigned shift = static_cast<unsigned>(bucket / kSub - 1);
  return bucket_low(bucket) + ((uint64_t{1} << shift) - 1);
}

void Histogram::record(uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  sum_ += value;
  if (value < min_) min_ = value;
  if (value > max_) max_ = value;
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  if (other.count_ && other.min_ < min_) min_ = other.min_;
  if (other.max_ > max_) max_ = other.max_;
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (p >= 100) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      uint64_t v = bucket_high(b);
      if (v > max_) v = max_;
      if (v < min_) v = min_;
      return v;
    }
  }
  return max_;
}

}  // namespace luacs::loadgen
