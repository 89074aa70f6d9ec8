#include "core/util/heap.h"

#include <malloc.h>

namespace luacs::util {

HeapStats heap_stats() {
  const struct mallinfo2 mi = ::mallinfo2();
  HeapStats s;
  s.in_use = mi.uordblks + mi.hblkhd;
  s.free_held = mi.fordblks;
  s.arenas = mi.arena;
  return s;
}

}  // namespace luacs::util
