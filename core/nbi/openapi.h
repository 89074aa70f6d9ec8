// The OpenAPI 3 document of the API (docs/openapi.json, compiled in).
#pragma once

#include <string_view>

namespace luacs::nbi {

std::string_view openapi_json();

}  // namespace luacs::nbi
