// The device filter of GET /devices (query parameters) and POST /jobs (a
// JSON object with the same names), turned into a WHERE clause over the
// `devices` table.
//
// Pure: no I/O, no loop. Every value becomes a $n parameter appended to the
// caller's parameter vector, never SQL text; names are checked against a
// fixed list, so nothing a client sends is spliced into the statement.
//
//   tag, not_tag             tags contain / do not contain the value
//   id_prefix                the id starts with the value
//   oui, product_class       equal
//   model, software_version  DeviceInfo.ModelName / .SoftwareVersion under
//                            either data model root, equal
//   informed_before/_after   last_inform before / after an RFC 3339 time
//   online                   true|false: last_inform within the window
//   faulty                   true|false: the device has a row in faults
//   param.<Name>             the stored value equals the value, or starts
//                            with it when it ends with '*'
//
// Terms are ANDed; a name may repeat (tag=a&tag=b: both tags).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace luacs::nbi {

struct FilterTerm {
  std::string name;   // "tag", "param.Device.X", ...
  std::string value;  // as given ("true"/"false" for online and faulty)
};

struct DeviceFilter {
  std::vector<FilterTerm> terms;
};

// Parsing returns the filter, or an error text naming what is wrong.
struct FilterParse {
  std::optional<DeviceFilter> filter;
  std::string error;  // set when filter is not
};

// From query parameters. `others`: the route's own parameters (fields,
// sort, ...) that are not filters; any other unknown name is an error.
FilterParse parse_filter(const std::vector<std::pair<std::string, std::string>>& query,
                         const std::vector<std::string_view>& others);
// From a JSON object: string values; online/faulty also true/false; an
// array of strings repeats a name.
FilterParse parse_filter(const nlohmann::json& j);

using SqlParams = std::vector<std::optional<std::string>>;

// The WHERE condition ("TRUE" when there is nothing to select on) over the
// unaliased `devices` table, with its values appended to params as $n.
// `scope_tag` (a tag-scoped token's tag, "" for none) is one more `tag`.
std::string filter_sql(const DeviceFilter& f, const std::string& scope_tag,
                       std::chrono::milliseconds online_window, SqlParams& params);

// Whether s is an RFC 3339 date-time ("2026-01-31T12:00:00Z", offsets and
// fractions allowed) with fields in range.
bool is_rfc3339(std::string_view s);

// s with LIKE's metacharacters (\ % _) escaped by a backslash.
std::string like_escape(std::string_view s);

}  // namespace luacs::nbi
