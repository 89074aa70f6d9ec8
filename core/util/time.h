// Times as the API, the logs of state and the CPE simulator write them:
// RFC 3339 in UTC to the second ("2026-12-04T09:12:44Z").
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace luacs::util {

std::string utc_rfc3339(int64_t unix_seconds);

inline std::string utc_rfc3339(std::chrono::system_clock::time_point t) {
  return utc_rfc3339(static_cast<int64_t>(std::chrono::system_clock::to_time_t(t)));
}

}  // namespace luacs::util
