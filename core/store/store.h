// The PostgreSQL store: the public face of core/store.
//
// luacs remembers every device, its events, parameters, tags, tasks, faults
// and transfers in PostgreSQL without ever blocking an event loop and without
// paying a round trip per Inform:
//
// - The store runs its own thread and event loop; its libpq connections are
//   asynchronous (PQsendQuery*/PQconsumeInput driven by libevent on PQsocket)
//   and reconnect with backoff.
// - Workers never wait on it: they hand it work (a mutex-protected queue and
//   event_active) and get completions back through the Executor they pass,
//   which runs the completion on the worker's own loop.
// - Session results are written behind: queued, and flushed as one
//   multi-row statement per table per batch, every flush_interval or when a
//   batch reaches batch_rows, and on shutdown.
// - Durability (DESIGN.md §5): a write marked durable completes only after
//   its transaction committed, so the caller acknowledges afterwards (a task
//   accepted, a TransferComplete answered). A crash loses at most the last
//   flush interval of plain "last seen" updates.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/device/device.h"
#include "core/loop/loop.h"
#include "core/soap/message.h"

namespace luacs::store {

// Runs a completion on the caller's event loop (any thread may call it).
using loop::Executor;

// The device value types (core/device) under the names the store has always
// used for them: the store translates them to and from rows.
using device::ClientCertificate;
using device::Device;
using device::Fault;
using device::SessionResult;
using device::StoredParameter;
using device::Task;
using device::TaskResult;
using device::Time;
using device::Transfer;

struct Options {
  std::string dsn;
  std::chrono::milliseconds flush_interval{5};
  size_t batch_rows = 500;
  size_t max_pending = 200'000;  // queued session results kept while PostgreSQL is away
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_min{100}, reconnect_max{5000};
  size_t cache_devices = 1'000'000;       // device cache bound, in devices
  size_t cache_bytes = size_t{64} << 20;  // and in memory (approx_bytes of the devices)
  std::chrono::hours session_log_retention{24 * 7};
  // A durable write (write_transfer, add_task, a write_session with `done`)
  // waiting for PostgreSQL is answered false / 0 after this long. A transfer
  // or task is then withdrawn (the caller will retry: the CPE resends its
  // TransferComplete, the API client its task); a session result stays
  // queued and is still written when PostgreSQL returns (its parts are
  // idempotent).
  std::chrono::milliseconds durable_timeout{60'000};
  // close() waits at most this long for the last commits.
  std::chrono::milliseconds close_timeout{10'000};
  // How often session_log rows older than session_log_retention are deleted
  // (in batches of a few thousand rows) and overdue tasks marked expired.
  std::chrono::milliseconds housekeeping_interval{60'000};
};

// A generated file (a RouterOS .alter script, an upgrade manifest) kept in
// PostgreSQL so its URL keeps working after a restart. bytes may hold any
// octets (NUL included). sha256 is hex; "" = computed by the store. token ""
// = none (the file server then uses the name's derived token); device_id ""
// = not bound to a device.
struct StoredFile {
  std::string name, content_type, bytes, sha256, token, device_id;
  bool operator==(const StoredFile&) const = default;
};

struct Stats {
  uint64_t batches = 0, rows_written = 0, last_batch_rows = 0, max_batch_rows = 0;
  uint64_t pending = 0, dropped = 0;  // dropped: queue bound hit
  uint64_t cache_hits = 0, cache_misses = 0, cache_size = 0, cache_bytes = 0, cache_evictions = 0;
  uint64_t reconnects = 0;
  uint64_t rejected = 0;  // writes PostgreSQL refused even alone (logged and dropped)
  bool available = false;
};

// Thread: the store's methods may be called from any thread (they queue
// work for the store thread, which alone touches libpq); completions run
// on the caller's loop through the Executor it passes.
class Store {
 public:
  // Connects (blocking: start-up only, before any event loop runs), applies
  // the migrations in `sql_dir`, starts the store thread. Throws
  // std::runtime_error with a one-line message and a hint on failure
  // ("cannot connect to PostgreSQL at ...: ...; is it running? check [store] dsn").
  static std::unique_ptr<Store> open(const Options& opts, const std::string& sql_dir);
  virtual ~Store() = default;

  // False while PostgreSQL is unreachable: new sessions get 503.
  virtual bool available() const = 0;
  // Session results and durable writes queued and not yet committed. The
  // server refuses new sessions (503) above [store] max_backlog, so a
  // store that falls behind slows the fleet down instead of losing writes.
  virtual uint64_t backlog() const = 0;

  // The device if it is in the cache (no I/O, any thread), else nullptr. The
  // Inform path tries this first and calls load_device() only on a miss.
  virtual std::shared_ptr<const Device> cached(const std::string& id) const = 0;

  // The device, from the cache or loaded from PostgreSQL. nullptr when it
  // is unknown, unless tasks already wait for it: then a Device holding only
  // the id and those tasks. `done` runs through `exec`. On a store error,
  // `done(nullptr, false)`.
  virtual void load_device(const std::string& id, Executor exec,
                           std::function<void(std::shared_ptr<const Device>, bool ok)> done) = 0;

  // Queue a session's result. `done` (optional) runs through `exec` once
  // the result is committed (or with false if it could not be).
  // (Every completion runs through its `exec`; without one it is not called.)
  virtual void write_session(SessionResult r, Executor exec = nullptr,
                             std::function<void(bool ok)> done = nullptr) = 0;

  // A transfer result, committed before `done(true)`: the CPE is answered
  // only then.
  virtual void write_transfer(Transfer t, Executor exec, std::function<void(bool ok)> done) = 0;
  // A Download/Upload sent to a CPE (written behind).
  virtual void record_transfer_sent(Transfer t) = 0;

  // A task, committed before `done(id)` (0 on failure).
  virtual void add_task(Task t, Executor exec, std::function<void(int64_t id)> done) = 0;

  // A file, kept durably (replacing a file of the same name): `done(true)`
  // after commit, false when it could not be stored (PostgreSQL refused it,
  // or stayed away longer than durable_timeout).
  virtual void put_file(StoredFile f, Executor exec, std::function<void(bool ok)> done) = 0;

  // The file of that name if it has in-line bytes: `done(file, true)`;
  // `done(nullptr, true)` when there is none; `done(nullptr, false)` on a
  // store error (PostgreSQL unreachable). Not cached by the store.
  virtual void load_file(const std::string& name, Executor exec,
                         std::function<void(std::shared_ptr<const StoredFile>, bool ok)> done) = 0;

  // Flush everything queued and stop the thread (SIGTERM path).
  virtual void close() = 0;

  virtual Stats stats() const = 0;
};

}  // namespace luacs::store
