// What the C allocator holds: memory in use by the program, and memory it
// freed that the allocator keeps for reuse (glibc's mallinfo2). RSS that
// grows while `in_use` stays flat is the allocator's retention, not a leak.
#pragma once

#include <cstdint>

namespace luacs::util {

struct HeapStats {
  uint64_t in_use = 0;     // bytes allocated and not freed (mmapped chunks included)
  uint64_t free_held = 0;  // bytes freed into the allocator's arenas, kept for reuse
};

// Any thread; takes each arena's lock for a moment.
HeapStats heap_stats();

// Hands the free pages inside the allocator's arenas back to the kernel
// (malloc_trim) when they are worth it: more than `min_free` bytes held
// free, and more than an eighth of what is in use. Memory freed on another
// thread than the one that allocated it (a session result built on a
// worker, freed by the store) stays in the worker's arena, in holes that
// RSS keeps counting: this is what takes them back. The trimmed pages
// still count as free_held (mallinfo2 counts the chunks, not what is
// resident), so past the thresholds this trims at every call: the caller
// calls it once a minute. Returns whether it trimmed; `micros` gets how long
// it took (each arena is locked in turn).
bool heap_trim(uint64_t min_free, uint64_t* micros);

}  // namespace luacs::util
