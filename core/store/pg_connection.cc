#include "core/store/pg_connection.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "core/util/log.h"

namespace luacs::store {

namespace {

// Server notices (NOTICE/WARNING) go to the log at debug level instead of
// libpq's default, stderr.
void log_notice(void*, const char* message) {
  if (log::enabled(log::Level::kDebug)) log::debug("postgres: " + first_line(message));
}

}  // namespace

std::string first_line(std::string_view message) {
  const size_t nl = message.find('\n');
  std::string_view line = message.substr(0, nl);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t'))
    line.remove_suffix(1);
  return std::string(line);
}

std::string describe_dsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return "(unparsable connection string)";
  }
  std::string out;
  for (const std::string_view k : {"host", "hostaddr", "port", "dbname", "user"}) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (k != o->keyword || !o->val || !*o->val) continue;
      if (!out.empty()) out += ' ';
      out += std::string(k) + "=" + o->val;
    }
  }
  PQconninfoFree(opts);
  return out.empty() ? "the libpq defaults" : out;
}

PgReply PgReply::failure(std::string error, bool connection_lost, std::string sqlstate) {
  PgReply r;
  r.error_ = error.empty() ? "unknown error" : std::move(error);
  r.lost_ = connection_lost;
  r.sqlstate_ = std::move(sqlstate);
  return r;
}

PgReply PgReply::success(PgResultPtr result) {
  PgReply r;
  r.result_ = std::move(result);
  return r;
}

uint64_t PgReply::affected() const {
  if (!result_) return 0;
  const char* s = PQcmdTuples(result_.get());
  uint64_t n = 0;
  std::from_chars(s, s + std::char_traits<char>::length(s), n);
  return n;
}

PgConnection::PgConnection(event_base* base, Options opts)
    : base_(base), opts_(std::move(opts)), backoff_(opts_.reconnect_min) {
  timer_.reset(event_new(base_, -1, 0, &PgConnection::on_timer, this));
  deferred_ev_.reset(event_new(base_, -1, 0, &PgConnection::on_deferred, this));
}

PgConnection::~PgConnection() = default;

void PgConnection::start() {
  if (state_ == State::kIdle) connect_now();
}

int PgConnection::backend_pid() const {
  return conn_ ? PQbackendPID(conn_.get()) : 0;
}

void PgConnection::connect_now() {
  // Defaults first: the dsn (expanded from dbname) overrides them. TCP
  // keepalives notice a server that vanished without closing (a dead host,
  // a dropped NAT entry) within a minute instead of hours; ignored on a
  // unix socket.
  const char* keywords[] = {"application_name", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "dbname",          nullptr};
  const char* values[] = {
      opts_.application_name.c_str(), "30", "10", "3", opts_.dsn.c_str(), nullptr};
  conn_.reset(PQconnectStartParams(keywords, values, 1));
  if (!conn_) {
    lost("cannot allocate a libpq connection");
    return;
  }
  PQsetNoticeProcessor(conn_.get(), log_notice, nullptr);
  if (PQstatus(conn_.get()) == CONNECTION_BAD) {
    lost(first_line(PQerrorMessage(conn_.get())));
    return;
  }
  state_ = State::kConnecting;
  const timeval tv = loop::to_timeval(opts_.connect_timeout);
  event_add(timer_.get(), &tv);
  // libpq: behave as if PQconnectPoll had last returned PGRES_POLLING_WRITING.
  wait_socket(EV_WRITE);
}

// The socket can change between two PQconnectPoll calls (another address
// of the host, a retry without SSL): re-fetch it every time.
void PgConnection::wait_socket(short what) {
  fd_ = PQsocket(conn_.get());
  if (fd_ < 0) {
    lost("connection has no socket");
    return;
  }
  io_.reset(event_new(base_, fd_, what, &PgConnection::on_io, this));
  event_add(io_.get(), nullptr);
}

void PgConnection::connect_poll() {
  switch (PQconnectPoll(conn_.get())) {
    case PGRES_POLLING_READING:
      wait_socket(EV_READ);
      break;
    case PGRES_POLLING_WRITING:
      wait_socket(EV_WRITE);
      break;
    case PGRES_POLLING_OK:
      connected();
      break;
    default:
      lost(first_line(PQerrorMessage(conn_.get())));
      break;
  }
}

void PgConnection::connected() {
  event_del(timer_.get());
  if (PQsetnonblocking(conn_.get(), 1) != 0) {
    lost("cannot make the connection non-blocking: " + first_line(PQerrorMessage(conn_.get())));
    return;
  }
  fd_ = PQsocket(conn_.get());
  io_.reset(event_new(base_, fd_, EV_READ | EV_PERSIST, &PgConnection::on_io, this));
  write_.reset(event_new(base_, fd_, EV_WRITE, &PgConnection::on_io, this));
  event_add(io_.get(), nullptr);
  backoff_ = opts_.reconnect_min;
  if (ever_connected_) ++reconnects_;
  ever_connected_ = true;
  last_error_.clear();

  auto ready = [this] {
    state_ = State::kReady;
    if (on_state) on_state(true);
    send_next();
  };
  if (opts_.on_connect_sql.empty()) {
    ready();
    return;
  }
  state_ = State::kSetup;
  auto setup = std::make_unique<Pending>();
  setup->sql = opts_.on_connect_sql;
  setup->internal = true;
  setup->done = [this, ready](PgReply r) {
    if (r.ok()) {
      ready();
    } else if (!r.connection_lost()) {
      lost("connection set-up failed: " + r.error());
    }
  };
  queue_.push_front(std::move(setup));
  send_next();
}

void PgConnection::lost(const std::string& why) {
  if (state_ == State::kClosed) return;
  const bool was_up = state_ == State::kReady;
  last_error_ = why;
  io_.reset();
  write_.reset();
  event_del(timer_.get());
  conn_.reset();
  fd_ = -1;
  current_result_.reset();
  current_error_.clear();
  std::deque<std::unique_ptr<Pending>> failed;
  if (current_) failed.push_back(std::move(current_));
  for (auto& p : queue_) failed.push_back(std::move(p));
  queue_.clear();
  schedule_reconnect();
  if (was_up)
    log::warn("store: " + opts_.application_name + " lost its PostgreSQL connection: " + why);
  if (was_up && on_state) on_state(false);
  for (auto& p : failed) {
    if (!p->internal) defer(std::move(p->done), PgReply::failure(why, true));
  }
}

void PgConnection::schedule_reconnect() {
  state_ = State::kBackoff;
  const timeval tv = loop::to_timeval(backoff_);
  event_add(timer_.get(), &tv);
  backoff_ = std::min(backoff_ * 2, opts_.reconnect_max);
}

void PgConnection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  io_.reset();
  write_.reset();
  event_del(timer_.get());
  conn_.reset();
  std::deque<std::unique_ptr<Pending>> failed;
  if (current_) failed.push_back(std::move(current_));
  for (auto& p : queue_) failed.push_back(std::move(p));
  queue_.clear();
  auto deferred = std::move(deferred_);
  deferred_.clear();
  for (auto& [done, reply] : deferred) done(std::move(reply));
  for (auto& p : failed) {
    if (!p->internal) p->done(PgReply::failure("connection closed", true));
  }
}

void PgConnection::query(std::string sql, Params params, Callback done) {
  if (state_ != State::kReady) {
    std::string why = "not connected to PostgreSQL";
    if (!last_error_.empty()) why += ": " + last_error_;
    defer(std::move(done), PgReply::failure(std::move(why), true));
    return;
  }
  auto p = std::make_unique<Pending>();
  p->sql = std::move(sql);
  p->params = std::move(params);
  p->done = std::move(done);
  queue_.push_back(std::move(p));
  send_next();
}

void PgConnection::send_next() {
  while (!current_ && !queue_.empty() && conn_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    int sent;
    if (current_->params.empty()) {
      sent = PQsendQuery(conn_.get(), current_->sql.c_str());
    } else {
      std::vector<const char*> values;
      values.reserve(current_->params.size());
      for (const auto& v : current_->params) values.push_back(v ? v->c_str() : nullptr);
      sent = PQsendQueryParams(conn_.get(), current_->sql.c_str(), static_cast<int>(values.size()),
                               nullptr, values.data(), nullptr, nullptr, 0);
    }
    if (sent) {
      flush();
      return;
    }
    const std::string err = first_line(PQerrorMessage(conn_.get()));
    if (PQstatus(conn_.get()) == CONNECTION_BAD) {
      lost(err);
      return;
    }
    auto p = std::move(current_);
    defer(std::move(p->done), PgReply::failure(err, false));
  }
}

void PgConnection::flush() {
  if (!conn_) return;
  const int r = PQflush(conn_.get());
  if (r < 0) {
    lost(first_line(PQerrorMessage(conn_.get())));
  } else if (r == 1) {
    event_add(write_.get(), nullptr);
  }
}

void PgConnection::on_io(evutil_socket_t, short what, void* self) {
  static_cast<PgConnection*>(self)->handle_io(what);
}

void PgConnection::handle_io(short what) {
  if (state_ == State::kConnecting) {
    connect_poll();
    return;
  }
  if (state_ != State::kSetup && state_ != State::kReady) return;
  if (what & EV_WRITE) {
    flush();
    if (!conn_) return;
  }
  if (what & EV_READ) read_results();
}

void PgConnection::read_results() {
  if (!PQconsumeInput(conn_.get())) {
    lost(first_line(PQerrorMessage(conn_.get())));
    return;
  }
  drain_notifies();
  // Output may still be queued (the server waits for us to read before it
  // reads more): try again now that input was consumed.
  if (PQflush(conn_.get()) < 0) {
    lost(first_line(PQerrorMessage(conn_.get())));
    return;
  }
  while (conn_ && current_ && !PQisBusy(conn_.get())) {
    PgResultPtr r(PQgetResult(conn_.get()));
    if (!r) {
      finish_current();
      send_next();
      continue;
    }
    const ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
      if (current_error_.empty()) {
        const char* primary = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
        current_error_ = first_line(primary ? primary : PQresultErrorMessage(r.get()));
        const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
        current_sqlstate_ = state ? state : "";
      }
    } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      lost("COPY is not supported on this connection");
      return;
    } else {
      current_result_ = std::move(r);
    }
  }
  if (conn_ && PQstatus(conn_.get()) == CONNECTION_BAD) {
    lost(first_line(PQerrorMessage(conn_.get())));
  }
}

void PgConnection::finish_current() {
  auto p = std::move(current_);
  PgReply reply = current_error_.empty()
                      ? PgReply::success(std::move(current_result_))
                      : PgReply::failure(std::move(current_error_), false, current_sqlstate_);
  current_result_.reset();
  current_error_.clear();
  current_sqlstate_.clear();
  // An error caused by the connection going away is a lost connection.
  if (!reply.ok() && conn_ && PQstatus(conn_.get()) == CONNECTION_BAD) {
    reply = PgReply::failure(reply.error(), true, reply.sqlstate());
  }
  p->done(std::move(reply));
}

void PgConnection::drain_notifies() {
  while (conn_) {
    PGnotify* n = PQnotifies(conn_.get());
    if (!n) break;
    const std::string channel = n->relname ? n->relname : "";
    const std::string payload = n->extra ? n->extra : "";
    const int pid = n->be_pid;
    PQfreemem(n);
    if (on_notify) on_notify(channel, payload, pid);
  }
}

void PgConnection::on_timer(evutil_socket_t, short, void* self) {
  auto* c = static_cast<PgConnection*>(self);
  if (c->state_ == State::kConnecting) {
    c->lost("timeout connecting (" + std::to_string(c->opts_.connect_timeout.count()) + " ms)");
  } else if (c->state_ == State::kBackoff) {
    c->connect_now();
  }
}

void PgConnection::defer(Callback done, PgReply reply) {
  if (!done) return;
  deferred_.emplace_back(std::move(done), std::move(reply));
  event_active(deferred_ev_.get(), 0, 0);
}

void PgConnection::on_deferred(evutil_socket_t, short, void* self) {
  auto* c = static_cast<PgConnection*>(self);
  auto items = std::move(c->deferred_);
  c->deferred_.clear();
  for (auto& [done, reply] : items) done(std::move(reply));
}

}  // namespace luacs::store
