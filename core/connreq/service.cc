#include "core/connreq/service.h"

#include <event2/dns.h>

#include <deque>
#include <unordered_map>
#include <vector>

#include "core/connreq/http_request.h"
#include "core/connreq/target.h"
#include "core/metrics/metrics.h"
#include "core/store/pg_connection.h"
#include "core/util/log.h"

namespace luacs::connreq {

namespace {

using Clock = std::chrono::steady_clock;
using store::PgReply;

// The device's URL (either data model root) and credentials, and a new
// attempt row; no row: no such device. The credentials: what luacs set on
// the device (with the username it reports when luacs set only the
// password), else the fleet's ($2, $3).
constexpr const char* kLoadSql =
    "WITH d AS (SELECT id, coalesce("
    "  parameters->'InternetGatewayDevice.ManagementServer.ConnectionRequestURL'->>0,"
    "  parameters->'Device.ManagementServer.ConnectionRequestURL'->>0, '') AS url,"
    "  coalesce("
    "  parameters->'InternetGatewayDevice.ManagementServer.ConnectionRequestUsername'->>0,"
    "  parameters->'Device.ManagementServer.ConnectionRequestUsername'->>0, '') AS username"
    "  FROM devices WHERE id = $1),"
    " i AS (INSERT INTO connection_requests (device_id, transport) SELECT id, 'http' FROM d"
    "  RETURNING id)"
    " SELECT i.id, d.url,"
    "  coalesce(c.username, CASE WHEN c.password IS NOT NULL THEN nullif(d.username, '') END, $2),"
    "  coalesce(c.password, $3)"
    " FROM i CROSS JOIN d LEFT JOIN connection_request_credentials c ON c.device_id = d.id";

constexpr const char* kRememberSql =
    "INSERT INTO connection_request_credentials AS c (device_id, username, password)"
    " VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE SET"
    " username = coalesce(EXCLUDED.username, c.username),"
    " password = coalesce(EXCLUDED.password, c.password), updated = now()";

constexpr const char* kFinishSql =
    "UPDATE connection_requests SET finished = now(), outcome = $2, http_status = $3::int,"
    " detail = $4 WHERE id = $1::int8";

// The newest attempt not yet closed by an Inform, from the last 10 minutes
// (a device that informs by itself much later was not woken by it).
constexpr const char* kInformedSql =
    "UPDATE connection_requests SET informed = now(),"
    " latency_ms = (extract(epoch FROM now() - requested) * 1000)::int8"
    " WHERE id = (SELECT max(id) FROM connection_requests WHERE device_id = $1"
    "  AND informed IS NULL AND (outcome IS NULL OR outcome = 'answered')"
    "  AND requested > now() - interval '10 minutes')";

using DnsBase = std::unique_ptr<evdns_base, decltype([](evdns_base* d) { evdns_base_free(d, 0); })>;

}  // namespace

struct Service::Impl {
  struct Entry;
  struct Waiter {
    Impl* impl = nullptr;
    std::string device;
    std::chrono::milliseconds wait{};
    loop::Executor exec;
    Done done;
    loop::Event timer;  // the wait for the session, once the CPE answered
  };
  struct Entry {
    enum class Phase { kLoading, kQueued, kRequesting, kAwaiting };
    Phase phase = Phase::kLoading;
    int64_t attempt = 0;
    Clock::time_point requested = Clock::now();
    RequestSpec spec;
    std::unique_ptr<HttpRequest> request;
    std::vector<std::unique_ptr<Waiter>> waiters;
    Result result;
    bool informed_early = false;  // the Inform came before the CPE's answer
  };

  explicit Impl(const config::Config& c) : cfg(c), rules(rules_from(c)) {}

  config::Config cfg;
  Rules rules;
  loop::Base base;
  std::unique_ptr<loop::Mailbox> mailbox;
  DnsBase dns;
  std::unique_ptr<store::PgConnection> pg;
  std::thread thread;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries;
  std::deque<std::string> queue;
  unsigned active = 0;

  Entry* find(const std::string& device) {
    const auto it = entries.find(device);
    return it == entries.end() ? nullptr : it->second.get();
  }

  static void deliver(Waiter& w, WakeResult r) {
    w.timer.reset();
    if (!w.done) return;
    auto run = [done = std::move(w.done), r = std::move(r)]() mutable { done(std::move(r)); };
    w.done = nullptr;
    if (w.exec)
      w.exec(std::move(run));
    else
      run();
  }

  // Answers every waiter of the device and forgets it.
  void complete(const std::string& device, WakeResult r) {
    const auto it = entries.find(device);
    if (it == entries.end()) return;
    auto entry = std::move(it->second);
    entries.erase(it);
    r.attempt = entry->attempt;
    for (auto& w : entry->waiters) deliver(*w, r);
  }

  void wake(const std::string& device, std::chrono::milliseconds wait, loop::Executor exec,
            Done done) {
    auto w = std::make_unique<Waiter>();
    w->impl = this;
    w->device = device;
    w->wait = wait;
    w->exec = std::move(exec);
    w->done = std::move(done);
    auto& slot = entries[device];
    const bool fresh = !slot;
    if (fresh) slot = std::make_unique<Entry>();
    if (slot->phase == Entry::Phase::kAwaiting) start_wait(*w);
    slot->waiters.push_back(std::move(w));
    if (fresh) load(device);  // else: joined the request in flight
  }

  void load(const std::string& device) {
    if (!pg) return complete(device, {"unavailable", false, 0, "no store configured"});
    pg->query(kLoadSql, {device, cfg.cr_username, cfg.cr_password},
              [this, device](PgReply r) { loaded(device, r); });
  }

  void loaded(const std::string& device, const PgReply& r) {
    Entry* e = find(device);
    if (!e) return;
    if (!r.ok()) return complete(device, {"unavailable", false, 0, "store: " + r.error()});
    if (r.rows() == 0) return complete(device, {"no_url", false, 0, "no such device"});
    e->attempt = std::stoll(std::string(r.get(0, 0)));
    e->spec = RequestSpec{std::string(r.get(0, 1)),
                          {std::string(r.get(0, 2)), std::string(r.get(0, 3))},
                          cfg.cr_allow_basic,
                          cfg.cr_timeout};
    if (active < cfg.cr_max_concurrent) return run(device, *e);
    e->phase = Entry::Phase::kQueued;
    queue.push_back(device);
  }

  void run(const std::string& device, Entry& e) {
    ++active;
    e.phase = Entry::Phase::kRequesting;
    e.request = std::make_unique<HttpRequest>(base.get(), dns.get(), rules, e.spec,
                                              [this, device](Result r) { answered(device, r); });
  }

  void next_in_queue() {
    while (active < cfg.cr_max_concurrent && !queue.empty()) {
      const std::string device = queue.front();
      queue.pop_front();
      if (Entry* e = find(device); e && e->phase == Entry::Phase::kQueued) run(device, *e);
    }
  }

  void answered(const std::string& device, Result r) {
    --active;
    Entry* e = find(device);
    next_in_queue();
    if (!e) return;
    e->request.reset();  // allowed from inside its callback (http_request.h)
    const std::string outcome = outcome_name(r.outcome);
    metrics::connection_request_done("http", outcome);
    const bool failed = r.outcome != Outcome::kAnswered;
    // A failure is answered once it is recorded: whoever asked finds the
    // attempt in connection_requests.
    pg->query(
        kFinishSql,
        {std::to_string(e->attempt), outcome,
         r.http_status ? std::optional(std::to_string(r.http_status)) : std::nullopt, r.detail},
        [this, device, failed, r, outcome](PgReply rep) {
          if (!rep.ok()) log::warn("connection request not recorded: " + rep.error());
          if (failed) complete(device, {outcome, false, r.http_status, r.detail});
        });
    if (failed) return;
    e->result = r;
    e->phase = Entry::Phase::kAwaiting;
    if (e->informed_early) return session_started(device, *e);
    for (auto& w : e->waiters) start_wait(*w);
  }

  void start_wait(Waiter& w) {
    w.timer.reset(evtimer_new(base.get(), &Impl::on_wait_over, &w));
    const timeval tv = loop::to_timeval(w.wait);
    evtimer_add(w.timer.get(), &tv);
  }

  // One waiter's patience ran out: it gets "answered"; the others wait on.
  static void on_wait_over(evutil_socket_t, short, void* arg) {
    auto* w = static_cast<Waiter*>(arg);
    Impl* self = w->impl;
    Entry* e = self->find(w->device);
    if (!e) return;
    const std::string device = w->device;
    deliver(*w, {"answered", false, e->result.http_status,
                 "the CPE answered but started no session within " +
                     std::to_string(w->wait.count()) + " ms",
                 -1, e->attempt});
    std::erase_if(e->waiters, [w](const auto& p) { return p.get() == w; });
    if (e->waiters.empty()) self->entries.erase(device);
  }

  void session_started(const std::string& device, Entry& e) {
    const auto latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - e.requested);
    metrics::connection_request_informed("http", Clock::now() - e.requested);
    complete(device,
             {"informed", true, e.result.http_status, "the session started", latency.count()});
  }

  void informed(const std::string& device) {
    if (pg)
      pg->query(kInformedSql, {device}, [](PgReply rep) {
        if (!rep.ok()) log::warn("connection request Inform not recorded: " + rep.error());
      });
    Entry* e = find(device);
    if (!e) return;
    if (e->phase == Entry::Phase::kAwaiting) return session_started(device, *e);
    e->informed_early = true;
  }
};

void Service::remember_credentials(const std::string& device_id,
                                   std::optional<std::string> username,
                                   std::optional<std::string> password) {
  auto& im = *impl_;
  if (!im.mailbox) return;
  im.mailbox->post(
      [&im, device_id, username = std::move(username), password = std::move(password)]() mutable {
        if (!im.pg) return;
        im.pg->query(kRememberSql, {device_id, std::move(username), std::move(password)},
                     [device_id](PgReply rep) {
                       if (!rep.ok())
                         log::warn("connection request credentials of " + device_id +
                                   " not kept: " + rep.error());
                     });
      });
}

Service::Service(const config::Config& cfg) : impl_(std::make_unique<Impl>(cfg)) {}

Service::~Service() {
  stop();
}

void Service::start() {
  auto& im = *impl_;
  im.base = loop::new_base();
  im.mailbox = std::make_unique<loop::Mailbox>(im.base.get());
  // Reads /etc/resolv.conf once, here; lookups never block the loop.
  im.dns.reset(evdns_base_new(im.base.get(), EVDNS_BASE_INITIALIZE_NAMESERVERS));
  if (!im.dns) log::warn("connection requests: no DNS resolver; only numeric URLs are contacted");
  if (!im.cfg.store_dsn.empty()) {
    store::PgConnection::Options o;
    o.dsn = im.cfg.store_dsn;
    o.application_name = "luacs connreq";
    im.pg = std::make_unique<store::PgConnection>(im.base.get(), o);
    im.pg->start();
  }
  im.thread = std::thread([b = im.base.get()] { event_base_loop(b, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void Service::stop() {
  auto& im = *impl_;
  if (!im.thread.joinable()) return;
  im.mailbox->post([b = im.base.get()] { event_base_loopbreak(b); });
  im.thread.join();
  if (im.pg) im.pg->close();
  im.entries.clear();  // aborts the attempts (and their DNS lookups) unanswered
  im.queue.clear();
  im.pg.reset();
  im.dns.reset();
  im.mailbox.reset();
  im.base.reset();
}

void Service::wake(const std::string& device_id, std::chrono::milliseconds wait,
                   loop::Executor exec, Done done) {
  auto& im = *impl_;
  if (!im.mailbox) {
    WakeResult r{"unavailable", false, 0, "connection requests are not running"};
    if (exec)
      exec([done = std::move(done), r] { done(r); });
    else
      done(r);
    return;
  }
  im.mailbox->post([&im, device_id, wait, exec = std::move(exec), done = std::move(done)] {
    im.wake(device_id, wait, exec, done);
  });
}

void Service::informed(const std::string& device_id) {
  auto& im = *impl_;
  if (im.mailbox) im.mailbox->post([&im, device_id] { im.informed(device_id); });
}

}  // namespace luacs::connreq
