// Internal to core/store: reading devices (with their pending tasks) back
// from PostgreSQL — one query for many ids, as the store batches the loads
// that queue up while one is in flight.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/store/pg_connection.h"
#include "core/store/store.h"

namespace luacs::store {

// $1 = text[] of ids; one row per id, in any order.
extern const char* const kLoadDevicesSql;

struct LoadedDevice {
  std::string id;
  bool exists = false;
  std::shared_ptr<Device> device;  // never null: id and pending_tasks at least
};

// Throws std::runtime_error on a row it cannot read (bad JSON).
std::vector<LoadedDevice> parse_loaded_devices(const PgReply& reply);

// A task from its JSON form [id, name, args, created_ms, expires_ms, unique_key].
Task task_from_json_text(const std::string& device_id, const std::string& json);

}  // namespace luacs::store
