// The Store: its thread, its two connections, and how work flows between
// them.
//
// - Workers call in from any thread. A cache hit is answered on the caller's
//   thread (through its Executor); everything else goes into the inbox (one
//   mutex) and wakes the store loop with event_active.
// - The reader connection loads devices, batching the ids that queue up while
//   one load is in flight into one `= ANY($1)` query, and LISTENs for tasks
//   queued elsewhere (a cached device is then dropped and reloaded).
// - The writer connection runs one thing at a time: durable single writes
//   (transfers, tasks) first, as a caller waits for each; then batches of
//   queued session results, flushed when the oldest has waited
//   flush_interval or the queue reaches batch_rows; then, when idle, the
//   periodic housekeeping. A transfer result waits only for a batch holding
//   the same device's transfer-sent record. A batch lost with the connection
//   goes back to the front of the queue (at-least-once: a commit whose reply
//   was lost is written again — every part is idempotent but a fault's
//   retries count); a batch refused by the server is retried in halves until
//   the bad result is alone, which is then logged and dropped.
// - Completions run through the caller's Executor, never on this thread.
#include <event2/event.h>
#include <event2/thread.h>

#include <stdexcept>

#include "core/store/device_row.h"
#include "core/store/migrate.h"
#include "core/store/pg_store.h"
#include "core/store/pg_text.h"
#include "core/util/hex.h"
#include "core/util/log.h"

namespace luacs::store {

// ---------------------------------------------------------------- callers

void PgStore::start() {
  base_.reset(event_base_new());
  if (!base_) throw std::runtime_error("store: cannot create an event base");
  wake_.reset(event_new(base_.get(), -1, EV_PERSIST, &PgStore::on_wake, this));
  flush_timer_.reset(event_new(base_.get(), -1, 0, &PgStore::on_flush_timer, this));
  tick_.reset(event_new(base_.get(), -1, EV_PERSIST, &PgStore::on_tick, this));
  const timeval tick = to_timeval(kTick);
  event_add(tick_.get(), &tick);
  next_housekeeping_ = Clock::now() + std::min(opts_.housekeeping_interval, milliseconds(2000));

  PgConnection::Options co;
  co.dsn = opts_.dsn;
  co.connect_timeout = opts_.connect_timeout;
  co.reconnect_min = opts_.reconnect_min;
  co.reconnect_max = opts_.reconnect_max;
  co.application_name = "luacs writer";
  writer_ = std::make_unique<PgConnection>(base_.get(), co);
  co.application_name = "luacs reader";
  co.on_connect_sql = "LISTEN luacs_task";
  reader_ = std::make_unique<PgConnection>(base_.get(), co);
  writer_->on_state = [this](bool up) { connection_state(true, up); };
  reader_->on_state = [this](bool up) { connection_state(false, up); };
  reader_->on_notify = [this](const std::string& channel, const std::string& payload, int pid) {
    // Our own add_task already updated the cache.
    if (channel == "luacs_task" && pid != writer_->backend_pid()) cache_.erase(payload);
  };
  writer_->start();
  reader_->start();
  thread_ = std::thread([this] { event_base_dispatch(base_.get()); });
}

// A device never seen before is still handed out when tasks wait for it
// (queued before its first Inform, e.g. pre-provisioning by serial).
static bool known_or_tasked(const CacheEntry& e) {
  return e.device && (e.exists || !e.device->pending_tasks.empty());
}

// Tasks that expired while cached are dropped from the snapshot.
CacheEntry PgStore::without_expired_tasks(const std::string& id, const CacheEntry& hit) const {
  const Time now = std::chrono::system_clock::now();
  auto expired = [&](const Task& t) { return t.expires && *t.expires <= now; };
  const auto& tasks = hit.device->pending_tasks;
  if (std::none_of(tasks.begin(), tasks.end(), expired)) return hit;
  auto copy = std::make_shared<Device>(*hit.device);
  std::erase_if(copy->pending_tasks, expired);
  CacheEntry e{std::move(copy), hit.exists};
  cache_.update(id, [&](CacheEntry& c) {
    if (c.device == hit.device) c = e;
  });
  return e;
}

std::shared_ptr<const Device> PgStore::cached(const std::string& id) const {
  if (closed_) return nullptr;
  auto hit = cache_.get(id);
  if (!hit || !hit->exists) return nullptr;
  ++cache_hits_;
  return without_expired_tasks(id, *hit).device;
}

void PgStore::load_device(const std::string& id, Executor exec,
                          std::function<void(std::shared_ptr<const Device>, bool)> done) {
  if (closed_) {
    deliver(exec, [done = std::move(done)] { done(nullptr, false); });
    return;
  }
  if (auto hit = cache_.get(id)) {
    ++cache_hits_;
    const CacheEntry e = without_expired_tasks(id, *hit);
    std::shared_ptr<const Device> dev = known_or_tasked(e) ? e.device : nullptr;
    deliver(exec, [done = std::move(done), dev = std::move(dev)] { done(dev, true); });
    return;
  }
  ++cache_misses_;
  {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_sealed_) {
      inbox_loads_.push_back({id, std::move(exec), std::move(done)});
      event_active(wake_.get(), 0, 0);
      return;
    }
  }
  deliver(exec, [done = std::move(done)] { done(nullptr, false); });
}

void PgStore::write_session(SessionResult r, Executor exec, std::function<void(bool)> done) {
  if (!exec) done = nullptr;
  if (closed_ || r.device_id.empty()) {
    if (r.device_id.empty()) log::warn("store: a session result without a device id was ignored");
    if (done) deliver(exec, [done = std::move(done)] { done(false); });
    return;
  }
  if (r.inform_time == Time{}) r.inform_time = std::chrono::system_clock::now();
  if (!r.summary_is_json || r.summary.empty()) r.summary = valid_json(std::move(r.summary));
  for (auto& f : r.faults) f.detail = valid_json(std::move(f.detail));
  for (auto& t : r.task_results) t.result = valid_json(std::move(t.result));

  Queued q;
  q.queued = Clock::now();
  q.exec = std::move(exec);
  q.done = std::move(done);
  const bool durable = static_cast<bool>(q.done);
  {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_sealed_) {
      q.seq = next_seq_++;
      // The next session of this device sees the result before it is
      // flushed. Done under the inbox lock so the entry's write number and
      // the queue agree on order (see publish_watermark).
      cache_.update(
          r.device_id,
          [&](CacheEntry& e) {
            // A known-absent entry holds only the tasks queued for the new device.
            apply_session(e.device, r);
            e.exists = true;
          },
          q.seq);
      q.session = std::move(r);
      inbox_writes_.push_back(std::move(q));
      inbox_count_.store(inbox_writes_.size(), std::memory_order_relaxed);
      // The store thread looks at the inbox by itself while its flush timer
      // runs: wake it only when it is not watching, for a full batch, or
      // for a caller waiting on the commit.
      if (!inbox_watched_ || durable || inbox_writes_.size() >= opts_.batch_rows)
        event_active(wake_.get(), 0, 0);
      return;
    }
  }
  if (q.done) deliver(q.exec, [d = std::move(q.done)] { d(false); });
}

void PgStore::record_transfer_sent(Transfer t) {
  if (closed_) return;
  Queued q;
  q.queued = Clock::now();
  q.is_transfer = true;
  q.transfer.transfer = std::move(t);
  q.transfer.sent_at = std::chrono::system_clock::now();
  std::lock_guard lock(inbox_mu_);
  if (inbox_sealed_) return;
  q.seq = next_seq_++;
  inbox_writes_.push_back(std::move(q));
  inbox_count_.store(inbox_writes_.size(), std::memory_order_relaxed);
  event_active(wake_.get(), 0, 0);
}

void PgStore::write_transfer(Transfer t, Executor exec, std::function<void(bool)> done) {
  Op op;
  op.queued = Clock::now();
  op.transfer = std::move(t);
  op.exec = std::move(exec);
  op.done_ok = std::move(done);
  enqueue(std::move(op));
}

void PgStore::add_task(Task t, Executor exec, std::function<void(int64_t)> done) {
  Op op;
  op.queued = Clock::now();
  op.kind = Op::Kind::kTask;
  t.args = valid_json(std::move(t.args));
  op.task = std::move(t);
  op.exec = std::move(exec);
  op.done_task = std::move(done);
  enqueue(std::move(op));
}

void PgStore::put_file(StoredFile f, Executor exec, std::function<void(bool)> done) {
  Op op;
  op.queued = Clock::now();
  op.kind = Op::Kind::kFile;
  op.file = std::move(f);
  op.exec = std::move(exec);
  op.done_ok = std::move(done);
  if (op.file.name.empty()) {
    log::warn("store: a file without a name was not stored");
    op.fail();
    return;
  }
  enqueue(std::move(op));
}

void PgStore::load_file(const std::string& name, Executor exec,
                        std::function<void(std::shared_ptr<const StoredFile>, bool)> done) {
  if (!closed_) {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_sealed_) {
      inbox_file_loads_.push_back({name, std::move(exec), std::move(done)});
      event_active(wake_.get(), 0, 0);
      return;
    }
  }
  deliver(exec, [done = std::move(done)] { done(nullptr, false); });
}

void PgStore::enqueue(Op op) {
  {
    std::lock_guard lock(inbox_mu_);
    if (!inbox_sealed_) {
      op.seq = next_seq_++;
      inbox_ops_.push_back(std::move(op));
      event_active(wake_.get(), 0, 0);
      return;
    }
  }
  op.fail();
}

void PgStore::close() {
  std::call_once(close_once_, [this] {
    closed_ = true;
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(inbox_mu_);
      inbox_close_ = true;
    }
    event_active(wake_.get(), 0, 0);
    thread_.join();
  });
}

Stats PgStore::stats() const {
  Stats s;
  s.batches = batches_;
  s.rows_written = rows_written_;
  s.last_batch_rows = last_batch_rows_;
  s.max_batch_rows = max_batch_rows_;
  s.pending = pending_;
  s.dropped = dropped_;
  s.cache_hits = cache_hits_;
  s.cache_misses = cache_misses_;
  s.cache_size = cache_.size();
  s.cache_bytes = cache_.bytes();
  s.cache_evictions = cache_.evictions();
  s.reconnects = (writer_ ? writer_->reconnects() : 0) + (reader_ ? reader_->reconnects() : 0);
  s.rejected = rejected_;
  s.available = available();
  return s;
}

// ---------------------------------------------------------------- store thread

void PgStore::on_wake(evutil_socket_t, short, void* self) {
  static_cast<PgStore*>(self)->drain_inbox();
}

void PgStore::on_flush_timer(evutil_socket_t, short, void* self) {
  // Writers do not wake the thread while this timer runs: look at the inbox.
  static_cast<PgStore*>(self)->drain_inbox();
}

void PgStore::on_tick(evutil_socket_t, short, void* self) {
  static_cast<PgStore*>(self)->tick();
}

void PgStore::drain_inbox() {
  std::vector<LoadRequest> loads;
  std::vector<Queued> writes;
  std::vector<Op> ops;
  std::vector<FileLoadRequest> file_loads;
  bool close_now;
  {
    std::lock_guard lock(inbox_mu_);
    loads.swap(inbox_loads_);
    file_loads.swap(inbox_file_loads_);
    writes.swap(inbox_writes_);
    inbox_count_.store(0, std::memory_order_relaxed);
    ops.swap(inbox_ops_);
    close_now = inbox_close_;
  }
  for (auto& l : loads) {
    auto [it, fresh] = loads_waiting_.try_emplace(l.id);
    if (fresh) load_order_.push_back(l.id);
    it->second.push_back(std::move(l));
  }
  size_t dropped = 0;
  for (auto& w : writes) dropped += queue_.push(std::move(w));
  if (dropped) note_dropped(dropped);
  for (auto& o : ops) ops_.push_back(std::move(o));
  update_pending();
  if (close_now && !closing_) {
    closing_ = true;
    close_deadline_ = Clock::now() + opts_.close_timeout;
  }
  for (auto& f : file_loads) run_file_load(std::move(f));
  pump_reader();
  pump_writer();
  maybe_finish_close();
}

void PgStore::connection_state(bool writer, bool up) {
  {
    std::lock_guard lock(up_mu_);
    (writer ? writer_up_ : reader_up_) = up;
  }
  up_cv_.notify_all();
  if (up && !writer) log::info("store: connected to PostgreSQL at " + describe_dsn(opts_.dsn));
  if (writer) {
    pump_writer();
  } else if (up) {
    pump_reader();
  } else {
    fail_loads();
  }
}

// ---- loads

void PgStore::fail_loads() {
  auto waiting = std::move(loads_waiting_);
  loads_waiting_.clear();
  load_order_.clear();
  for (auto& [id, reqs] : waiting) {
    for (auto& r : reqs) deliver(r.exec, [d = std::move(r.done)] { d(nullptr, false); });
  }
}

void PgStore::pump_reader() {
  if (load_order_.empty() || reader_busy_) return;
  if (!reader_->available() || closing_) {
    fail_loads();
    return;
  }
  std::vector<std::string> ids;
  ArrayLiteral arr;
  while (!load_order_.empty() && ids.size() < kLoadBatch) {
    ids.push_back(std::move(load_order_.front()));
    load_order_.pop_front();
    arr.add(ids.back());
  }
  reader_busy_ = true;
  reader_->query(kLoadDevicesSql, {arr.take()}, [this, ids = std::move(ids)](PgReply reply) {
    reader_busy_ = false;
    std::vector<LoadedDevice> loaded;
    bool ok = reply.ok();
    if (ok) {
      try {
        loaded = parse_loaded_devices(reply);
      } catch (const std::exception& e) {
        log::error(std::string("store: ") + e.what());
        ok = false;
      }
    } else {
      log::warn("store: loading devices failed: " + reply.error());
    }
    std::unordered_map<std::string, CacheEntry> found;
    for (auto& l : loaded) {
      // A write_session that raced this load has the newer picture.
      found[l.id] = cache_.put_if_absent(l.id, CacheEntry{l.device, l.exists});
    }
    for (const std::string& id : ids) {
      auto it = loads_waiting_.find(id);
      if (it == loads_waiting_.end()) continue;
      auto reqs = std::move(it->second);
      loads_waiting_.erase(it);
      auto f = found.find(id);
      std::shared_ptr<const Device> dev;
      if (ok && f != found.end() && known_or_tasked(f->second)) dev = f->second.device;
      for (auto& r : reqs) deliver(r.exec, [d = std::move(r.done), dev, ok] { d(dev, ok); });
    }
    pump_reader();
  });
}

// ---- file loads: rare (a file the catalog does not hold, after a restart),
// so each is its own query, queued on the reader behind any device load.

namespace {

constexpr const char* kLoadFileSql =
    "SELECT content_type, encode(bytes, 'hex'), sha256, coalesce(token, ''),"
    " coalesce(device_id, '') FROM files WHERE name = $1 AND bytes IS NOT NULL";

bool from_hex(std::string_view hex, std::string& out) {
  if (hex.size() % 2) return false;
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = util::hex_value(hex[2 * i]), lo = util::hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

void PgStore::run_file_load(FileLoadRequest req) {
  if (closing_) {
    deliver(req.exec, [d = std::move(req.done)] { d(nullptr, false); });
    return;
  }
  // Not connected: the reader fails the query at once (from the loop).
  reader_->query(kLoadFileSql, {req.name}, [req](PgReply reply) {
    std::shared_ptr<StoredFile> file;
    bool ok = reply.ok();
    if (!ok) {
      log::warn("store: loading file " + req.name + " failed: " + reply.error());
    } else if (reply.rows() == 1) {
      file = std::make_shared<StoredFile>();
      file->name = req.name;
      file->content_type = reply.get(0, 0);
      file->sha256 = reply.get(0, 2);
      file->token = reply.get(0, 3);
      file->device_id = reply.get(0, 4);
      if (!from_hex(reply.get(0, 1), file->bytes)) {
        log::error("store: file " + req.name + ": bad bytes from PostgreSQL");
        file.reset();
        ok = false;
      }
    }
    deliver(req.exec, [d = req.done, file = std::shared_ptr<const StoredFile>(std::move(file)),
                       ok] { d(file, ok); });
  });
}

void PgStore::tick() {
  const auto now = Clock::now();
  if (dropped_unlogged_ && now - last_drop_log_ >= kDropLogEvery) note_dropped(0);
  // Durable writes that waited too long for PostgreSQL.
  if (!writer_->available()) {
    for (size_t i = writer_busy_ ? 1 : 0; i < ops_.size();) {
      if (now - ops_[i].queued >= opts_.durable_timeout) {
        log::warn("store: gave up waiting for PostgreSQL to store a " + ops_[i].what());
        ops_[i].fail();
        ops_.erase(ops_.begin() + static_cast<long>(i));
      } else {
        ++i;
      }
    }
    queue_.for_each([&](Queued& q) {
      if (q.done && !q.told && now - q.queued >= opts_.durable_timeout) {
        q.told = true;
        deliver(q.exec, [d = q.done] { d(false); });
      }
    });
    update_pending();
  }
  if (closing_ && now >= close_deadline_) {
    finish_close();
    return;
  }
  pump_writer();
}

void PgStore::maybe_finish_close() {
  if (closing_ && !finished_ && queue_.empty() && ops_.empty() && !writer_busy_) finish_close();
}

void PgStore::finish_close() {
  if (finished_) return;
  finished_ = true;
  event_del(tick_.get());
  event_del(flush_timer_.get());
  event_del(wake_.get());
  writer_->close();  // in-flight batches come back into the queue
  reader_->close();
  {
    std::lock_guard lock(up_mu_);
    writer_up_ = reader_up_ = false;
  }
  {
    // From here on callers are answered at once (false) instead of queuing.
    std::lock_guard lock(inbox_mu_);
    inbox_sealed_ = true;
    for (auto& w : inbox_writes_) queue_.push(std::move(w));
    for (auto& o : inbox_ops_) ops_.push_back(std::move(o));
    for (auto& l : inbox_loads_) loads_waiting_[l.id].push_back(std::move(l));
    for (auto& f : inbox_file_loads_) {
      deliver(f.exec, [d = std::move(f.done)] { d(nullptr, false); });
    }
    inbox_file_loads_.clear();
    inbox_writes_.clear();
    inbox_ops_.clear();
    inbox_loads_.clear();
  }
  fail_loads();
  size_t lost = 0;
  for (auto& q : queue_.take_all()) {
    ++lost;
    if (q.done && !q.told) deliver(q.exec, [d = std::move(q.done)] { d(false); });
  }
  for (auto& op : ops_) {
    ++lost;
    op.fail();
  }
  ops_.clear();
  if (lost) {
    log::error("store: closed with " + std::to_string(lost) +
               " writes not stored (PostgreSQL unavailable)");
  }
  update_pending();
  event_base_loopbreak(base_.get());
}

std::unique_ptr<Store> Store::open(const Options& opts, const std::string& sql_dir) {
  static const bool threads_ready = [] { return evthread_use_pthreads() == 0; }();
  if (!threads_ready) throw std::runtime_error("libevent: evthread_use_pthreads failed");
  {
    PgConnPtr conn = connect_blocking(opts.dsn, opts.connect_timeout);
    const MigrationReport report = migrate(conn.get(), sql_dir);
    if (!report.applied.empty()) {
      log::info("store: schema at version " + std::to_string(report.to) + " (was " +
                std::to_string(report.from) + ")");
    }
  }
  auto store = std::make_unique<PgStore>(opts);
  store->start();
  store->wait_available(opts.connect_timeout);
  return store;
}

}  // namespace luacs::store
