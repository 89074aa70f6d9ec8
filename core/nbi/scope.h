// What a request may see of the fleet, and how a listing of it is asked
// for: a token scoped to a tag sees only the devices carrying it (and their
// tasks, faults and sessions) and acts only on those. Shared by the task,
// fault and session routes.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "core/nbi/db.h"
#include "core/nbi/exchange.h"

namespace luacs::nbi {

// An SQL condition true when the device `device_col` names is visible to
// `who`: "true" for a fleet-wide token, else an EXISTS on devices.tags with
// the tag appended to `params` (never in the text).
std::string visible_sql(const Principal& who, std::string_view device_col, Params& params);

// Runs `sql` on the API's store and hands `done` the reply when it
// succeeded and the client is still there. Answers 503 itself without a
// store, and the store's errors (db_error).
void store_query(const ExchangePtr& x, std::string sql, Params params,
                 std::function<void(const PgReply&)> done);

// Answers 400 naming the first query parameter not in `known`; false then.
bool only_params(const ExchangePtr& x, std::initializer_list<std::string_view> known);

// ?limit= of a listing: default 100, 1..10,000; nullopt (and a 400 answered)
// when it is not.
std::optional<int64_t> page_limit(const ExchangePtr& x);

// An SQL expression: the timestamptz `col` as RFC 3339 UTC text with
// milliseconds, NULL when it is.
std::string utc_sql(std::string_view col);

}  // namespace luacs::nbi
