#include "core/server/admission.h"

#include "core/server/worker.h"

namespace luacs::server {

std::string_view wording(Refusal r) {
  switch (r) {
    case Refusal::kStoreDown:
      return "Store unavailable, retry later";
    case Refusal::kStoreBehind:
      return "Store behind, retry later";
    case Refusal::kOverloaded:
      return "Overloaded, retry later";
    case Refusal::kTooManySessions:
      return "Too many sessions, retry later";
    case Refusal::kDeviceBusy:
      return "Device already in a session, retry later";
    case Refusal::kAddressLimit:
      return "Too many sessions from this address, retry later";
  }
  return "Busy, retry later";
}

std::string_view metric_name(Refusal r) {
  switch (r) {
    case Refusal::kStoreDown:
      return "store_down";
    case Refusal::kStoreBehind:
      return "store_behind";
    case Refusal::kOverloaded:
      return "overloaded";
    case Refusal::kTooManySessions:
      return "too_many_sessions";
    case Refusal::kDeviceBusy:
      return "device_busy";
    case Refusal::kAddressLimit:
      return "address_limit";
  }
  return "busy";
}

std::atomic<uint64_t>& counter(Stats& st, Refusal r) {
  switch (r) {
    case Refusal::kStoreBehind:
      return st.rejected_backlog;
    case Refusal::kOverloaded:
      return st.rejected_overload;
    case Refusal::kStoreDown:
    case Refusal::kTooManySessions:
    case Refusal::kDeviceBusy:
    case Refusal::kAddressLimit:
      break;
  }
  return st.rejected_busy;
}

std::optional<Refusal> admit_new_session(const Worker& w) {
  const Shared& sh = w.shared();
  if (const store::Store* store = sh.store) {
    if (!store->available()) return Refusal::kStoreDown;
    if (store->backlog() >= w.cfg().store_max_backlog) return Refusal::kStoreBehind;
  }
  // Overload: new work waits here longer than max_queue_delay (sessions in
  // flight go first). Shed new sessions, but never down to an idle worker:
  // with fewer than kMinLive sessions in flight it still takes them, so a
  // saturated box keeps completing sessions.
  constexpr size_t kMinLive = 32;
  if (w.saturated() && w.live_sessions() >= kMinLive) return Refusal::kOverloaded;
  if (sh.stats.sessions_live.load(std::memory_order_relaxed) >=
      static_cast<int64_t>(w.cfg().max_sessions))
    return Refusal::kTooManySessions;
  return std::nullopt;
}

}  // namespace luacs::server
