// Internal to core/connreq: the `connection_requests` rows of the
// connection-request service, written in batches.
//
// One statement per attempt event (the row, its outcome, the Inform that
// closed it) cost PostgreSQL a parse, a plan and a commit each: three per
// wake, and at a thousand wakes a second PostgreSQL, on the same cores as
// luacs, took more CPU than the sessions the wakes started. So the events
// queue here and go out every few milliseconds as at most three statements
// over arrays (unnest), in order on one connection: the rows, then the
// outcomes, then the Informs, so an update never comes before its row.
//
// An attempt needs its id at once (the API answers with it, and the
// request's result is matched to it), before its row is written: ids come
// from blocks reserved from the table's sequence.
//
// Lives on the service's loop; not thread-safe.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "core/loop/loop.h"
#include "core/store/pg_connection.h"
#include "core/store/pg_text.h"

namespace luacs::connreq {

class Journal {
 public:
  static constexpr int kBlock = 1000;  // ids reserved at once
  static constexpr std::chrono::milliseconds kFlushAfter{5};

  // `pg`: a connection of the service's, used for nothing else (the
  // writes must stay in order).
  Journal(event_base* base, store::PgConnection& pg);

  // An attempt of `device` by `transport` begins: `then(id, "")` with its
  // id -- at once when a reserved id is left, else once a block came --
  // or `then(0, error)` when none can be had (PostgreSQL is down).
  using Begun = std::function<void(int64_t id, const std::string& error)>;
  void begin(const std::string& device, const std::string& transport, Begun then);
  // The attempt's outcome; `then(ok)` once it is committed (a failure is
  // answered only once whoever asked can find it).
  void finish(int64_t id, const std::string& outcome, int http_status, const std::string& detail,
              std::function<void(bool ok)> then);
  // The device's `6 CONNECTION REQUEST` Inform: its newest open attempt of
  // the last 10 minutes gets it and the latency.
  void informed(const std::string& device);

 private:
  struct Waiting {
    std::string device, transport;
    Begun then;
  };
  static void on_flush(evutil_socket_t, short, void* self);
  void reserve();
  void reserved(const store::PgReply& r);
  void add_row(int64_t id, const std::string& device, const std::string& transport);
  void arm();
  void flush();

  store::PgConnection& pg_;
  loop::Event timer_;
  bool armed_ = false;
  std::deque<int64_t> ids_;
  bool reserving_ = false;
  std::vector<Waiting> waiting_;  // for ids

  static int64_t now_ms();
  // The next batch, as array literals.
  store::ArrayLiteral row_id_, row_device_, row_transport_, row_at_;
  store::ArrayLiteral fin_id_, fin_outcome_, fin_status_, fin_detail_, fin_at_;
  std::vector<std::function<void(bool)>> fin_then_;
  store::ArrayLiteral inf_device_, inf_at_;
};

}  // namespace luacs::connreq
