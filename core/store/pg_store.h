// Internal to core/store: the Store implementation's shape, shared by
// store.cc (callers, the thread, loads, closing) and writer.cc (batches,
// durable writes, housekeeping). See store.cc for how work flows.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/store/device_cache.h"
#include "core/store/pg_connection.h"
#include "core/store/session_batch.h"
#include "core/store/store.h"
#include "core/store/write_behind.h"

namespace luacs::store {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline constexpr size_t kLoadBatch = 256;       // ids per load query
inline constexpr int kHousekeepingRows = 5000;  // rows per retention/expiry statement
inline constexpr milliseconds kTick{250};       // timeouts, logs, housekeeping checks
inline constexpr milliseconds kDropLogEvery{60'000};

using loop::to_timeval;

inline void deliver(const Executor& exec, std::function<void()> fn) {
  if (exec) exec(std::move(fn));
}

struct LoadRequest {
  std::string id;
  Executor exec;
  std::function<void(std::shared_ptr<const Device>, bool)> done;
};

// A durable single write: committed before its caller hears back.
struct Op {
  enum class Kind { kTransfer, kTask, kFile };
  uint64_t seq = 0;
  Clock::time_point queued{};
  Kind kind = Kind::kTransfer;
  Transfer transfer;
  Task task;
  StoredFile file;
  Executor exec;
  std::function<void(bool)> done_ok;  // transfer, file
  std::function<void(int64_t)> done_task;

  void fail() {
    if (kind == Kind::kTask) {
      if (done_task) deliver(exec, [d = std::move(done_task)] { d(0); });
    } else if (done_ok) {
      deliver(exec, [d = std::move(done_ok)] { d(false); });
    }
  }
  // For log lines: "task for device X", "file x.alter".
  std::string what() const {
    switch (kind) {
      case Kind::kTask:
        return "task for device " + task.device_id;
      case Kind::kFile:
        return "file " + file.name;
      case Kind::kTransfer:
        break;
    }
    return "transfer result for device " + transfer.device_id;
  }
};

struct FileLoadRequest {
  std::string name;
  Executor exec;
  std::function<void(std::shared_ptr<const StoredFile>, bool)> done;
};

inline Options sane(Options o) {
  o.batch_rows = std::max<size_t>(o.batch_rows, 1);
  o.max_pending = std::max<size_t>(o.max_pending, 1);
  if (o.reconnect_max < o.reconnect_min) o.reconnect_max = o.reconnect_min;
  return o;
}

class PgStore final : public Store {
 public:
  explicit PgStore(const Options& opts)
      : opts_(sane(opts)),
        cache_(opts_.cache_devices, opts_.cache_bytes),
        queue_(opts_.max_pending) {
    cache_.set_unflushed(&unflushed_from_);
  }

  ~PgStore() override { close(); }

  void start();
  void wait_available(milliseconds timeout) {
    std::unique_lock lock(up_mu_);
    up_cv_.wait_for(lock, timeout, [&] { return available(); });
  }

  bool available() const override { return writer_up_ && reader_up_; }
  uint64_t backlog() const override {
    return pending_.load(std::memory_order_relaxed) + inbox_count_.load(std::memory_order_relaxed);
  }
  std::shared_ptr<const Device> cached(const std::string& id) const override;
  void load_device(const std::string& id, Executor exec,
                   std::function<void(std::shared_ptr<const Device>, bool ok)> done) override;
  void write_session(SessionResult r, Executor exec, std::function<void(bool ok)> done) override;
  void write_transfer(Transfer t, Executor exec, std::function<void(bool ok)> done) override;
  void record_transfer_sent(Transfer t) override;
  void add_task(Task t, Executor exec, std::function<void(int64_t id)> done) override;
  void put_file(StoredFile f, Executor exec, std::function<void(bool ok)> done) override;
  void load_file(const std::string& name, Executor exec,
                 std::function<void(std::shared_ptr<const StoredFile>, bool ok)> done) override;
  void close() override;
  Stats stats() const override;

 private:
  // ---- store thread
  static void on_wake(evutil_socket_t, short, void* self);
  static void on_flush_timer(evutil_socket_t, short, void* self);
  static void on_tick(evutil_socket_t, short, void* self);
  void enqueue(Op op);  // any thread
  void drain_inbox();
  void connection_state(bool writer, bool up);
  void pump_reader();
  void fail_loads();
  void run_file_load(FileLoadRequest req);
  void pump_writer();       // pump_writer_once, then watch_inbox
  void pump_writer_once();  // start the next write if one is due
  void watch_inbox();       // keep the flush timer running while there is work
  void publish_watermark();
  void run_batch(uint64_t limit);
  void batch_done(std::vector<Queued> items, const PgReply& reply);
  void run_op();
  void run_housekeeping();
  struct Sequence {
    std::vector<Statement> steps;
    size_t next = 0;
    std::function<void(PgReply)> done;
  };
  void run_sequence(std::vector<Statement> statements, std::function<void(PgReply)> done);
  void sequence_step(std::shared_ptr<Sequence> seq, PgReply reply);
  void tick();
  void note_dropped(size_t n);
  void maybe_finish_close();
  void finish_close();
  CacheEntry without_expired_tasks(const std::string& id, const CacheEntry& hit) const;
  void update_pending() { pending_ = queue_.size() + ops_.size() + inflight_items_; }

  const Options opts_;
  mutable DeviceCache cache_;

  // Shared with callers.
  std::mutex inbox_mu_;
  std::vector<LoadRequest> inbox_loads_;
  std::vector<Queued> inbox_writes_;
  std::vector<Op> inbox_ops_;
  std::vector<FileLoadRequest> inbox_file_loads_;
  bool inbox_close_ = false;
  // True while the flush timer will drain the inbox by itself: writers then
  // queue without waking the thread.
  bool inbox_watched_ = false;
  std::atomic<uint64_t> inbox_count_{0};
  // Every session write numbered below this is committed (or dropped); the
  // cache keeps devices written later (DeviceCache::set_unflushed).
  std::atomic<uint64_t> unflushed_from_{0};
  bool inbox_sealed_ = false;  // the thread has finished: nothing is queued any more
  uint64_t next_seq_ = 1;
  std::atomic<bool> closed_{false};
  std::once_flag close_once_;
  std::atomic<bool> writer_up_{false}, reader_up_{false};
  std::mutex up_mu_;
  std::condition_variable up_cv_;
  std::atomic<uint64_t> batches_{0}, rows_written_{0}, last_batch_rows_{0}, max_batch_rows_{0};
  std::atomic<uint64_t> pending_{0}, dropped_{0}, rejected_{0};
  mutable std::atomic<uint64_t> cache_hits_{0}, cache_misses_{0};

  // Store thread only.
  loop::Base base_;
  EventPtr wake_, flush_timer_, tick_;
  std::unique_ptr<PgConnection> reader_, writer_;
  std::thread thread_;
  WriteQueue queue_;
  std::deque<Op> ops_;
  bool writer_busy_ = false;
  bool last_was_op_ = false;  // the writer's last turn went to a durable single write
  size_t inflight_items_ = 0;
  uint64_t inflight_min_seq_ = UINT64_MAX;  // lowest seq of the batch being written
  std::unordered_map<std::string, std::vector<LoadRequest>> loads_waiting_;
  std::deque<std::string> load_order_;
  bool reader_busy_ = false;
  bool closing_ = false;
  bool finished_ = false;  // finish_close() ran
  Clock::time_point close_deadline_{};
  Clock::time_point next_housekeeping_{};
  uint64_t dropped_unlogged_ = 0;
  Clock::time_point last_drop_log_{};
};

}  // namespace luacs::store
