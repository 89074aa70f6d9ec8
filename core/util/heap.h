// What the C allocator holds: memory in use by the program, and memory it
// freed that the allocator keeps for reuse (glibc's mallinfo2). RSS that
// grows while `in_use` stays flat is the allocator's retention, not a leak.
#pragma once

#include <cstdint>

namespace luacs::util {

struct HeapStats {
  uint64_t in_use = 0;     // bytes allocated and not freed (mmapped chunks included)
  uint64_t free_held = 0;  // bytes freed into the allocator's arenas, kept for reuse
  uint64_t arenas = 0;     // bytes the arenas span (in use + free)
};

// Any thread; takes each arena's lock for a moment.
HeapStats heap_stats();

}  // namespace luacs::util
