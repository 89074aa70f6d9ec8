#include "core/connreq/journal.h"

#include "core/util/log.h"

namespace luacs::connreq {

namespace {

using store::PgReply;

constexpr const char* kReserveSql =
    "SELECT nextval('connection_requests_id_seq') FROM generate_series(1, 1000)";

constexpr const char* kRowsSql =
    "INSERT INTO connection_requests (id, device_id, transport, requested)"
    " SELECT u.id, u.device, u.transport, to_timestamp(u.at / 1000.0)"
    " FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[]) u(id, device, transport, at)";

constexpr const char* kFinishSql =
    "UPDATE connection_requests c SET finished = to_timestamp(u.at / 1000.0), outcome = u.outcome,"
    " http_status = nullif(u.status, 0), detail = u.detail"
    " FROM unnest($1::int8[], $2::text[], $3::int[], $4::text[], $5::int8[])"
    "  u(id, outcome, status, detail, at) WHERE c.id = u.id";

// Each device's newest attempt not yet closed by an Inform, from the last
// 10 minutes (a device that informs by itself much later was not woken by
// it).
constexpr const char* kInformedSql =
    "UPDATE connection_requests c SET informed = to_timestamp(u.at / 1000.0),"
    " latency_ms = greatest(0, u.at - (extract(epoch FROM c.requested) * 1000)::int8)"
    " FROM (SELECT DISTINCT ON (x.device) x.at, (SELECT max(r.id) FROM connection_requests r"
    "   WHERE r.device_id = x.device AND r.informed IS NULL"
    "   AND (r.outcome IS NULL OR r.outcome IN ('answered', 'sent'))"
    "   AND r.requested > now() - interval '10 minutes') AS id"
    "  FROM unnest($1::text[], $2::int8[]) x(device, at) ORDER BY x.device, x.at) u"
    " WHERE c.id = u.id";

static_assert(Journal::kBlock == 1000, "kReserveSql's generate_series");

}  // namespace

Journal::Journal(event_base* base, store::PgConnection& pg)
    : pg_(pg), timer_(evtimer_new(base, &Journal::on_flush, this)) {}

int64_t Journal::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Journal::begin(const std::string& device, const std::string& transport, Begun then) {
  if (ids_.size() < kBlock / 4) reserve();
  if (ids_.empty()) {
    waiting_.push_back({device, transport, std::move(then)});
    return;
  }
  const int64_t id = ids_.front();
  ids_.pop_front();
  add_row(id, device, transport);
  then(id, "");
}

void Journal::reserve() {
  if (reserving_) return;
  reserving_ = true;
  pg_.query(kReserveSql, [this](PgReply r) { reserved(r); });
}

void Journal::reserved(const PgReply& r) {
  reserving_ = false;
  if (r.ok())
    for (int i = 0; i < r.rows(); ++i) ids_.push_back(std::stoll(std::string(r.get(i, 0))));
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& w : waiting) {
    if (ids_.empty()) {
      w.then(0, "store: " + (r.ok() ? std::string("no attempt id") : r.error()));
      continue;
    }
    const int64_t id = ids_.front();
    ids_.pop_front();
    add_row(id, w.device, w.transport);
    w.then(id, "");
  }
}

void Journal::add_row(int64_t id, const std::string& device, const std::string& transport) {
  row_id_.add(id);
  row_device_.add(device);
  row_transport_.add(transport);
  row_at_.add(now_ms());
  arm();
}

void Journal::finish(int64_t id, const std::string& outcome, int http_status,
                     const std::string& detail, std::function<void(bool)> then) {
  fin_id_.add(id);
  fin_outcome_.add(outcome);
  fin_status_.add(static_cast<int64_t>(http_status));
  fin_detail_.add(detail);
  fin_at_.add(now_ms());
  fin_then_.push_back(std::move(then));
  arm();
}

void Journal::informed(const std::string& device) {
  inf_device_.add(device);
  inf_at_.add(now_ms());
  arm();
}

void Journal::arm() {
  if (armed_) return;
  armed_ = true;
  const timeval tv = loop::to_timeval(kFlushAfter);
  evtimer_add(timer_.get(), &tv);
}

void Journal::on_flush(evutil_socket_t, short, void* self) {
  static_cast<Journal*>(self)->flush();
}

// In order on the one connection: rows, outcomes, Informs.
void Journal::flush() {
  armed_ = false;
  auto report = [](const char* what, const PgReply& r) {
    if (!r.ok())
      log::warn(std::string("connection requests: ") + what + " not recorded: " + r.error());
  };
  auto warn = [report](const char* what) { return [report, what](PgReply r) { report(what, r); }; };
  if (row_id_.size())
    pg_.query(kRowsSql, {row_id_.take(), row_device_.take(), row_transport_.take(), row_at_.take()},
              warn("attempts"));
  if (fin_id_.size()) {
    pg_.query(kFinishSql,
              {fin_id_.take(), fin_outcome_.take(), fin_status_.take(), fin_detail_.take(),
               fin_at_.take()},
              [report, then = std::move(fin_then_)](PgReply r) {
                report("outcomes", r);
                for (const auto& t : then) t(r.ok());
              });
    fin_then_.clear();
  }
  if (inf_device_.size())
    pg_.query(kInformedSql, {inf_device_.take(), inf_at_.take()}, warn("Informs"));
}

}  // namespace luacs::connreq
