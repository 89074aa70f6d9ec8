// The writer side of the store thread: batches of session results, durable
// single writes, housekeeping (see store.cc for the whole flow).
#include <algorithm>
#include <chrono>
#include <limits>

#include "core/metrics/metrics.h"
#include "core/store/device_row.h"
#include "core/store/pg_store.h"
#include "core/store/pg_text.h"
#include "core/util/log.h"

namespace luacs::store {

namespace {

constexpr const char* kWriteTransferSql =
    "WITH open AS (SELECT id FROM transfers WHERE device_id = $1 AND command_key = $2"
    "  AND completed_at IS NULL AND NOT $10::bool ORDER BY id DESC LIMIT 1 FOR UPDATE),"
    " upd AS (UPDATE transfers t SET completed_at = now(), fault_code = $6::int8,"
    "  fault_string = $7, start_time = $8, complete_time = $9"
    "  FROM open WHERE t.id = open.id RETURNING t.id)"
    " INSERT INTO transfers (device_id, command_key, is_download, file_type, url, completed_at,"
    "  fault_code, fault_string, start_time, complete_time, autonomous)"
    " SELECT $1, $2, $3::bool, $4, $5, now(), $6::int8, $7, $8, $9, $10::bool"
    " WHERE NOT EXISTS (SELECT 1 FROM upd)";

constexpr const char* kAddTaskSql =
    "INSERT INTO tasks (device_id, name, args, created, expires, unique_key)"
    " VALUES ($1, $2, $3::jsonb, COALESCE(to_timestamp($4::float8 / 1000), now()),"
    "  to_timestamp($5::float8 / 1000), NULLIF($6, ''))"
    " ON CONFLICT (device_id, unique_key) WHERE state = 'pending'"
    " DO UPDATE SET args = EXCLUDED.args, expires = EXCLUDED.expires"
    " RETURNING json_build_array(id, name, args, (extract(epoch FROM created) * 1000)::int8,"
    "  (extract(epoch FROM expires) * 1000)::int8, unique_key)";

// $3 is the bytes as bytea's hex input form (\x...): a text parameter
// cannot carry NUL bytes.
constexpr const char* kPutFileSql =
    "INSERT INTO files (name, content_type, bytes, path, size, sha256, token, device_id)"
    " VALUES ($1, $2, $3::bytea, NULL, length($3::bytea),"
    "  coalesce(NULLIF($4, ''), encode(sha256($3::bytea), 'hex')), NULLIF($5, ''), NULLIF($6, ''))"
    " ON CONFLICT (name) DO UPDATE SET content_type = EXCLUDED.content_type,"
    "  bytes = EXCLUDED.bytes, path = NULL, size = EXCLUDED.size, sha256 = EXCLUDED.sha256,"
    "  token = EXCLUDED.token, device_id = EXCLUDED.device_id, created = now()";

std::string bytea_hex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 + 2 * bytes.size());
  out += "\\x";
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace

// ---- writes

void PgStore::pump_writer() {
  pump_writer_once();
  publish_watermark();
  watch_inbox();
}

void PgStore::publish_watermark() {
  uint64_t w = std::min(queue_.oldest_seq(), inflight_min_seq_);
  std::lock_guard lock(inbox_mu_);
  w = std::min(w, inbox_writes_.empty() ? next_seq_ : inbox_writes_.front().seq);
  unflushed_from_.store(w, std::memory_order_release);
}

void PgStore::watch_inbox() {
  const bool busy = writer_busy_ || !queue_.empty();
  std::lock_guard lock(inbox_mu_);
  const bool work = busy || !inbox_writes_.empty();
  if (work && !finished_ && !event_pending(flush_timer_.get(), EV_TIMEOUT, nullptr)) {
    const timeval tv = to_timeval(opts_.flush_interval);
    event_add(flush_timer_.get(), &tv);
  }
  inbox_watched_ = work && !finished_;
}

void PgStore::pump_writer_once() {
  if (finished_ || writer_busy_ || !writer_->available()) return;
  const bool batch_due =
      !queue_.empty() && (closing_ || queue_.size() >= opts_.batch_rows ||
                          Clock::now() - queue_.oldest_time() >= opts_.flush_interval);
  // Durable single writes go first (a caller waits for each), but a due
  // batch gets every other turn so a stream of them cannot starve it. A
  // transfer result whose Download was recorded in a batch not yet written
  // waits for that batch.
  if (!ops_.empty() && !(batch_due && last_was_op_)) {
    const Op& op = ops_.front();
    if (op.kind != Op::Kind::kTransfer ||
        !queue_.has_transfer_before(op.transfer.device_id, op.seq)) {
      last_was_op_ = true;
      run_op();
    } else {
      last_was_op_ = false;
      run_batch(op.seq);
    }
    return;
  }
  last_was_op_ = false;
  if (batch_due) {
    run_batch(std::numeric_limits<uint64_t>::max());
    return;
  }
  if (!queue_.empty()) {
    if (!event_pending(flush_timer_.get(), EV_TIMEOUT, nullptr)) {
      const auto wait = std::chrono::duration_cast<milliseconds>(
          opts_.flush_interval - (Clock::now() - queue_.oldest_time()));
      const timeval tv = to_timeval(wait + milliseconds(1));
      event_add(flush_timer_.get(), &tv);
    }
    return;
  }
  if (!closing_ && Clock::now() >= next_housekeeping_) run_housekeeping();
}

// Statements in order; more than one run in a transaction. `done` gets the
// last statement's reply, or the first failure.
void PgStore::run_sequence(std::vector<Statement> statements, std::function<void(PgReply)> done) {
  if (statements.size() == 1) {
    writer_->query(std::move(statements[0].sql), std::move(statements[0].params), std::move(done));
    return;
  }
  auto seq = std::make_shared<Sequence>();
  seq->steps.push_back(Statement{"BEGIN", {}});
  for (auto& st : statements) seq->steps.push_back(std::move(st));
  seq->steps.push_back(Statement{"COMMIT", {}});
  seq->done = std::move(done);
  sequence_step(std::move(seq), PgReply::success(nullptr));
}

// Each query's callback owns the sequence; nothing else does.
void PgStore::sequence_step(std::shared_ptr<Sequence> seq, PgReply reply) {
  if (!reply.ok() || seq->next == seq->steps.size()) {
    // Inside the transaction (past BEGIN) a failure needs a ROLLBACK before
    // the connection takes the next statement; the FIFO keeps it first.
    if (!reply.ok() && !reply.connection_lost() && seq->next > 1) {
      writer_->query("ROLLBACK", [](PgReply) {});
    }
    seq->done(std::move(reply));
    return;
  }
  Statement& st = seq->steps[seq->next++];
  writer_->query(std::move(st.sql), std::move(st.params),
                 [this, seq](PgReply r) { sequence_step(seq, std::move(r)); });
}

void PgStore::run_batch(uint64_t limit) {
  std::vector<Queued> items = queue_.take(opts_.batch_rows, limit);
  if (items.empty()) return;
  std::vector<const SessionResult*> sessions;
  std::vector<const SentTransfer*> sent;
  for (const Queued& q : items) {
    if (q.is_transfer) {
      sent.push_back(&q.transfer);
    } else {
      sessions.push_back(&q.session);
    }
  }
  EncodedBatch batch = encode_batch(sessions, sent);
  writer_busy_ = true;
  inflight_items_ = items.size();
  inflight_min_seq_ = items.front().seq;
  update_pending();
  auto shared_items = std::make_shared<std::vector<Queued>>(std::move(items));
  run_sequence(std::move(batch.statements),
               [this, shared_items, sent = std::chrono::steady_clock::now()](PgReply reply) {
                 if (reply.ok())
                   metrics::store_batch_committed(shared_items->size(),
                                                  std::chrono::steady_clock::now() - sent);
                 batch_done(std::move(*shared_items), reply);
               });
}

void PgStore::batch_done(std::vector<Queued> items, const PgReply& reply) {
  writer_busy_ = false;
  inflight_items_ = 0;
  inflight_min_seq_ = UINT64_MAX;
  if (reply.ok()) {
    const uint64_t n = items.size();
    ++batches_;
    rows_written_ += n;
    last_batch_rows_ = n;
    if (n > max_batch_rows_) max_batch_rows_ = n;
    update_pending();  // before any completion runs: its caller may look at stats()
    for (auto& q : items) {
      if (q.done && !q.told) deliver(q.exec, [d = std::move(q.done)] { d(true); });
    }
  } else if (reply.connection_lost()) {
    queue_.put_back(std::move(items));  // retried after the reconnect
  } else if (items.size() > 1) {
    const size_t half = (items.size() + 1) / 2;
    for (auto& q : items) q.max_batch = std::min(q.max_batch, half);
    queue_.put_back(std::move(items));
  } else {
    Queued& q = items.front();
    ++rejected_;
    log::error("store: PostgreSQL refused a write for device " +
               (q.is_transfer ? q.transfer.transfer.device_id : q.session.device_id) +
               ", dropped: " + reply.error());
    if (q.done && !q.told) deliver(q.exec, [d = std::move(q.done)] { d(false); });
  }
  update_pending();
  pump_writer();
  maybe_finish_close();
}

void PgStore::run_op() {
  const Op& op = ops_.front();
  writer_busy_ = true;
  std::string sql;
  PgConnection::Params params;
  switch (op.kind) {
    case Op::Kind::kTask: {
      const Task& t = op.task;
      sql = kAddTaskSql;
      params = {t.device_id,
                t.name,
                t.args,
                t.created == Time{} ? std::nullopt
                                    : std::optional(std::to_string(to_epoch_ms(t.created))),
                t.expires ? std::optional(std::to_string(to_epoch_ms(*t.expires))) : std::nullopt,
                t.unique_key};
      break;
    }
    case Op::Kind::kTransfer: {
      const Transfer& t = op.transfer;
      sql = kWriteTransferSql;
      params = {t.device_id,
                t.command_key,
                t.is_download ? "true" : "false",
                t.file_type,
                t.url,
                std::to_string(t.fault_code),
                t.fault_string,
                t.start_time,
                t.complete_time,
                t.autonomous ? "true" : "false"};
      break;
    }
    case Op::Kind::kFile: {
      const StoredFile& f = op.file;
      sql = kPutFileSql;
      params = {f.name,
                f.content_type.empty() ? "application/octet-stream" : f.content_type,
                bytea_hex(f.bytes),
                f.sha256,
                f.token,
                f.device_id};
      break;
    }
  }
  writer_->query(std::move(sql), std::move(params), [this](PgReply reply) {
    writer_busy_ = false;
    if (!reply.ok() && reply.connection_lost()) {
      // Stays first in line: retried after the reconnect (or failed by
      // tick() after durable_timeout).
    } else {
      Op op = std::move(ops_.front());
      ops_.pop_front();
      update_pending();  // before any completion runs: its caller may look at stats()
      int64_t id = 0;
      if (reply.ok() && op.kind == Op::Kind::kTask && reply.rows() == 1) {
        const Task task = task_from_json_text(op.task.device_id, std::string(reply.get(0, 0)));
        id = task.id;
        cache_.update(task.device_id, [&](CacheEntry& e) {
          auto d = std::make_shared<Device>(*e.device);
          std::erase_if(d->pending_tasks, [&](const Task& p) { return p.id == task.id; });
          d->pending_tasks.push_back(task);
          std::sort(d->pending_tasks.begin(), d->pending_tasks.end(),
                    [](const Task& a, const Task& b) { return a.id < b.id; });
          e.device = std::move(d);
        });
      }
      const bool ok = reply.ok() && (op.kind != Op::Kind::kTask || id != 0);
      if (!ok) {
        ++rejected_;
        log::error("store: cannot store a " + op.what() + ": " + reply.error());
      }
      if (op.kind == Op::Kind::kTask) {
        if (op.done_task) deliver(op.exec, [d = std::move(op.done_task), id] { d(id); });
      } else if (op.done_ok) {
        deliver(op.exec, [d = std::move(op.done_ok), ok] { d(ok); });
      }
    }
    update_pending();
    pump_writer();
    maybe_finish_close();
  });
}

// Deletes expired session_log rows and marks overdue tasks expired, a few
// thousand rows per statement so no statement holds locks for long; runs
// again soon while there is more.
void PgStore::run_housekeeping() {
  writer_busy_ = true;
  const std::string retention =
      std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>(opts_.session_log_retention).count()) +
      " seconds";
  const std::string limit = std::to_string(kHousekeepingRows);
  std::string sql =
      "WITH l AS (DELETE FROM session_log WHERE ctid = ANY(ARRAY("
      "  SELECT ctid FROM session_log WHERE at < now() - $1::interval LIMIT $2::int))"
      "  RETURNING 1),"
      " k AS (UPDATE tasks SET state = 'expired', finished = now() WHERE id = ANY(ARRAY("
      "  SELECT id FROM tasks WHERE state = 'pending' AND expires < now() LIMIT $2::int))"
      "  RETURNING 1)"
      " SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM k)";
  writer_->query(std::move(sql), {retention, limit}, [this](PgReply reply) {
    writer_busy_ = false;
    bool more = false;
    if (reply.ok() && reply.rows() == 1) {
      more = std::atol(std::string(reply.get(0, 0)).c_str()) >= kHousekeepingRows ||
             std::atol(std::string(reply.get(0, 1)).c_str()) >= kHousekeepingRows;
    } else if (!reply.ok() && !reply.connection_lost()) {
      log::error("store: housekeeping failed: " + reply.error());
    }
    next_housekeeping_ = Clock::now() + (more ? milliseconds(200) : opts_.housekeeping_interval);
    pump_writer();
    maybe_finish_close();
  });
}

void PgStore::note_dropped(size_t n) {
  dropped_ += n;
  dropped_unlogged_ += n;
  const auto now = Clock::now();
  if (last_drop_log_ == Clock::time_point{} || now - last_drop_log_ >= kDropLogEvery) {
    log::warn("store: write-behind queue full (max_pending " + std::to_string(opts_.max_pending) +
              ", PostgreSQL " + (available() ? "slow" : "unavailable") + "): dropped " +
              std::to_string(dropped_unlogged_) + " last-seen updates (" +
              std::to_string(dropped_.load()) + " in all)");
    dropped_unlogged_ = 0;
    last_drop_log_ = now;
  }
}

}  // namespace luacs::store
