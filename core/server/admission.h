// Internal to core/server: whether a request may start a new session, and
// how each refusal is worded and counted -- once, here.
//
// Every refusal is 503 with Retry-After and a close: the CPE comes back on
// its own retry schedule. Sessions already in flight are never refused; a
// box that cannot keep up slows the fleet down instead of losing work.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/server/server.h"

namespace luacs::server {

class Worker;

enum class Refusal {
  kStoreDown,        // PostgreSQL unreachable: nothing the session did could be kept
  kStoreBehind,      // more than [store] max_backlog writes wait for their commit
  kOverloaded,       // new work waits longer than [limits] max_queue_delay here
  kTooManySessions,  // [limits] max_sessions live sessions
  kDeviceBusy,       // the device is in a live session on an open connection
  kAddressLimit,     // [limits] sessions_per_address live sessions from the address
};

// The 503's body line, e.g. "Store unavailable, retry later".
std::string_view wording(Refusal r);
// Its label in /metrics, e.g. "store_down".
std::string_view metric_name(Refusal r);
// The Stats counter a refusal is counted in.
std::atomic<uint64_t>& counter(Stats& st, Refusal r);

// The refusal for a request that would start a new session on `w`, if any
// (the device's own claim is checked later, once its id is known).
std::optional<Refusal> admit_new_session(const Worker& w);

}  // namespace luacs::server
