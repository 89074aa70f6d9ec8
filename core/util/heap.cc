#include "core/util/heap.h"

#include <malloc.h>

#include <chrono>

namespace luacs::util {

HeapStats heap_stats() {
  const struct mallinfo2 mi = ::mallinfo2();
  HeapStats s;
  s.in_use = mi.uordblks + mi.hblkhd;
  s.free_held = mi.fordblks;
  return s;
}

bool heap_trim(uint64_t min_free, uint64_t* micros) {
  const HeapStats s = heap_stats();
  *micros = 0;
  if (s.free_held <= min_free || s.free_held <= s.in_use / 8) return false;
  const auto t0 = std::chrono::steady_clock::now();
  ::malloc_trim(0);
  *micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  return true;
}

}  // namespace luacs::util
