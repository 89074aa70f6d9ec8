// Internal to core/nbi: waking a device from a route (POST
// /devices/{id}/connection_request, POST /devices/{id}/tasks?connection_request),
// shared by routes_connreq.cc and routes_tasks.cc.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "core/nbi/api.h"
#include "core/nbi/exchange.h"

namespace luacs::nbi {

inline constexpr std::chrono::milliseconds kWakeDefault{30'000};
inline constexpr std::chrono::milliseconds kWakeMax{120'000};

// ?timeout=ms: default 30 s, 1..120,000; nullopt (and a 400 answered) when
// it is not.
std::optional<std::chrono::milliseconds> wake_timeout(const ExchangePtr& x);

// Wakes `device` and hands `then` the answer on the API's loop while the
// client is still there. Answers 501 itself when the server has no
// connection requests.
void wake_device(const ExchangePtr& x, const std::string& device, std::chrono::milliseconds wait,
                 std::function<void(const WakeAnswer&)> then);

// The answer's JSON: {"outcome", "detail", "http_status", "latency_ms", "attempt",
// "transport"}.
nlohmann::json wake_json(const WakeAnswer& a);

// Answers a wake that did not start a session: 504 with the reason, 503
// when connection requests are unavailable.
void answer_not_woken(const ExchangePtr& x, const WakeAnswer& a);

}  // namespace luacs::nbi
