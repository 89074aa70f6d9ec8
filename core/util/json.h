// JSON text for what luacs stores and logs: compact, and invalid UTF-8 from
// a CPE or a policy replaced rather than thrown on.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace luacs::util {

inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace luacs::util
