// Internal to core/store: turns a batch of queued writes into SQL.
//
// A batch is sent as one statement whose data-modifying CTEs write every
// table at once — devices (a multi-row upsert), session_log, faults (upsert
// bumping retries), task results, transfers sent — each fed by unnest() of a
// handful of array parameters, so 500 sessions cost one round trip, one
// parse and a few kilobytes of array text per column. Tag changes, when the
// batch has any, are a second statement in the same transaction: they must
// see the device rows the first one inserted, and compute from the current
// row (devices.tags) so another node or the API editing tags is not undone.
//
// The same device twice in one batch is merged here (ON CONFLICT cannot
// touch a row twice): the latest identity/address/events win, first_seen is
// the earliest, parameters are concatenated in order (jsonb keeps the last
// duplicate key), tag changes are folded into one net add/remove set, faults
// per (device, source) are folded with a repeat count, task results per id
// keep the last.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"
#include "core/store/store.h"

namespace luacs::store {

struct SentTransfer {
  Transfer transfer;
  Time sent_at{};
};

struct Statement {
  std::string sql;
  PgConnection::Params params;
};

struct EncodedBatch {
  std::vector<Statement> statements;  // run in order; in one transaction when more than one
  size_t devices = 0, sessions = 0, faults = 0, task_results = 0, transfers = 0, tag_changes = 0,
         certificates = 0;
};

// `sessions` oldest first. A session with a zero inform_time must have been
// given one by the caller (the store uses the time it was queued).
EncodedBatch encode_batch(std::span<const SessionResult* const> sessions,
                          std::span<const SentTransfer* const> sent);

}  // namespace luacs::store
