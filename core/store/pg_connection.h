// Internal to core/store: one asynchronous libpq connection on a libevent
// loop.
//
// Connecting is PQconnectStartParams + PQconnectPoll driven by events on
// PQsocket (which may change between polls); queries are PQsendQuery /
// PQsendQueryParams (text parameters) on a non-blocking connection, one at a
// time, the rest waiting in a FIFO; results are read with PQconsumeInput /
// PQisBusy / PQgetResult when the socket is readable and output is flushed
// with PQflush when it is writable. Nothing here ever blocks the loop.
//
// When the connection is lost every query in flight or queued gets an error
// (`connection_lost()`), `available()` turns false, and the connection is
// re-established with exponential backoff (reconnect_min doubling up to
// reconnect_max). While unavailable, new queries fail at once (delivered from
// the loop, never from inside query()). Callers own the retry policy.
//
// Single-threaded: every method runs on the loop's thread.
#pragma once

#include <event2/event.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/loop/loop.h"

namespace luacs::store {

using PgResultPtr = std::unique_ptr<PGresult, loop::Deleter<PQclear>>;
using PgConnPtr = std::unique_ptr<PGconn, loop::Deleter<PQfinish>>;
using EventPtr = loop::Event;

// The outcome of one query: its (last) result, or an error.
class PgReply {
 public:
  PgReply() = default;
  static PgReply failure(std::string error, bool connection_lost, std::string sqlstate = "");
  static PgReply success(PgResultPtr result);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }  // one line
  // The connection broke (or was not there): the statement may or may not
  // have run. A plain SQL error leaves the connection usable.
  bool connection_lost() const { return lost_; }
  const std::string& sqlstate() const { return sqlstate_; }

  int rows() const { return result_ ? PQntuples(result_.get()) : 0; }
  int columns() const { return result_ ? PQnfields(result_.get()) : 0; }
  bool is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string_view get(int row, int col) const {
    return {PQgetvalue(result_.get(), row, col),
            static_cast<size_t>(PQgetlength(result_.get(), row, col))};
  }
  // Rows changed by an INSERT/UPDATE/DELETE (PQcmdTuples), 0 if none.
  uint64_t affected() const;
  PGresult* raw() const { return result_.get(); }

 private:
  PgResultPtr result_;
  std::string error_;
  std::string sqlstate_;
  bool lost_ = false;
};

// The first line of a libpq/server error message, trimmed.
std::string first_line(std::string_view message);
// A connection string fit for a log line: host, port, dbname, user; never the password.
std::string describe_dsn(const std::string& dsn);

class PgConnection {
 public:
  using Params = std::vector<std::optional<std::string>>;  // nullopt = SQL NULL
  using Callback = std::function<void(PgReply)>;

  struct Options {
    std::string dsn;
    std::string application_name = "luacs";
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds reconnect_min{100}, reconnect_max{5000};
    // Run after each (re)connect, before available() turns true ("LISTEN x").
    std::string on_connect_sql;
  };

  PgConnection(event_base* base, Options opts);
  ~PgConnection();  // drops callbacks without calling them; use close() first
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Starts connecting (returns at once).
  void start();
  // Fails everything queued or in flight ("connection closed") and stops
  // reconnecting.
  void close();

  bool available() const { return state_ == State::kReady; }
  bool busy() const { return current_ != nullptr || !queue_.empty(); }
  size_t queued() const { return queue_.size() + (current_ ? 1 : 0); }
  int backend_pid() const;
  uint64_t reconnects() const { return reconnects_.load(); }
  const std::string& last_error() const { return last_error_; }

  // Without params: PQsendQuery (several statements allowed; the reply is
  // the last result, or the first error). With params: PQsendQueryParams,
  // all parameters as text.
  void query(std::string sql, Params params, Callback done);
  void query(std::string sql, Callback done) { query(std::move(sql), {}, std::move(done)); }

  // up = true once connected and on_connect_sql has run; false when lost.
  std::function<void(bool up)> on_state;
  // LISTEN/NOTIFY: channel, payload, notifying backend's pid.
  std::function<void(const std::string& channel, const std::string& payload, int pid)> on_notify;

 private:
  enum class State { kIdle, kConnecting, kSetup, kReady, kBackoff, kClosed };
  struct Pending {
    std::string sql;
    Params params;
    Callback done;
    bool internal = false;  // the on_connect_sql
  };

  static void on_io(evutil_socket_t, short what, void* self);
  static void on_timer(evutil_socket_t, short what, void* self);
  static void on_deferred(evutil_socket_t, short what, void* self);

  void connect_now();
  void connect_poll();
  void wait_socket(short what);  // during connect
  void connected();
  void lost(const std::string& why);
  void schedule_reconnect();
  void handle_io(short what);
  void send_next();
  void flush();
  void read_results();
  void finish_current();
  void drain_notifies();
  void defer(Callback done, PgReply reply);

  event_base* base_;
  Options opts_;
  State state_ = State::kIdle;
  PgConnPtr conn_;
  evutil_socket_t fd_ = -1;
  EventPtr io_;     // connecting: one-shot read or write; connected: persistent read
  EventPtr write_;  // connected: one-shot write while PQflush has output left
  EventPtr timer_;  // connect timeout, or the backoff delay
  EventPtr deferred_ev_;
  std::chrono::milliseconds backoff_;
  bool ever_connected_ = false;
  std::atomic<uint64_t> reconnects_{0};  // read by Store::stats() from any thread
  std::string last_error_;

  std::deque<std::unique_ptr<Pending>> queue_;
  std::unique_ptr<Pending> current_;
  PgResultPtr current_result_;
  std::string current_error_, current_sqlstate_;
  std::deque<std::pair<Callback, PgReply>> deferred_;
};

}  // namespace luacs::store
