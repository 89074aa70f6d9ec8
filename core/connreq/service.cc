#include "core/connreq/service.h"

#include <event2/dns.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/connreq/http_request.h"
#include "core/connreq/journal.h"
#include "core/connreq/stun_server.h"
#include "core/connreq/target.h"
#include "core/connreq/xmpp.h"
#include "core/metrics/metrics.h"
#include "core/store/device_row.h"
#include "core/store/pg_connection.h"
#include "core/store/pg_pool.h"
#include "core/util/log.h"

namespace luacs::connreq {

namespace {

using Clock = std::chrono::steady_clock;
using store::PgReply;

// ManagementServer.<name> under either data model root, '' when neither
// has it; element `index` of the stored [value, type, read_at_seconds].
std::string managed(const std::string& name, int index = 0, const char* column = "d.parameters") {
  const std::string i = std::to_string(index);
  const std::string c = column;
  return "coalesce(" + c + "->'InternetGatewayDevice.ManagementServer." + name + "'->>" + i + ", " +
         c + "->'Device.ManagementServer." + name + "'->>" + i + ", '')";
}

// What the device reported that decides the transport, and the
// credentials: what luacs set on the device (with the username it reports
// when luacs set only the password), else the fleet's ($2, $3). No row: no
// such device.
//
// Used when the device is not in the server's cache. The parameters are
// detoasted once (`|| '{}'` makes an in-memory copy): each `->` on the
// stored, compressed value would unpack all of it again.
const std::string kLoadSql =
    "SELECT " + managed("ConnectionRequestURL", 0, "d.p") +
    ", coalesce(c.username, CASE WHEN c.password IS NOT NULL THEN nullif(" +
    managed("ConnectionRequestUsername", 0, "d.p") + ", '') END, $2), coalesce(c.password, $3), " +
    managed("ConnReqJabberID", 0, "d.p") + ", " + managed("NATDetected", 0, "d.p") + ", " +
    managed("STUNUsername", 0, "d.p") + ", " + managed("UDPConnectionRequestAddress", 0, "d.p") +
    ", " + managed("UDPConnectionRequestAddress", 2, "d.p") +
    " FROM (SELECT id, parameters || '{}' AS p FROM devices WHERE id = $1 OFFSET 0) d"
    " LEFT JOIN connection_request_credentials c ON c.device_id = d.id";

// The credentials luacs remembers for a device planned from the server's
// cache (NULLs: none remembered).
constexpr const char* kCredentialsSql =
    "SELECT c.username, c.password FROM (SELECT 1) one"
    " LEFT JOIN connection_request_credentials c ON c.device_id = $1";

// What luacs remembers of a device's credentials (connection_request_credentials),
// kept in memory for kRememberedTtl: a device woken again soon costs no read.
// luacs' own SetParameterValues update it at once; the TTL bounds how long
// a change made elsewhere (another node, by hand) goes unseen.
struct Remembered {
  std::optional<std::string> username, password;
  Clock::time_point read;
};
constexpr std::chrono::seconds kRememberedTtl{60};
constexpr size_t kRememberedMax = 200'000;

constexpr const char* kRememberSql =
    "INSERT INTO connection_request_credentials AS c (device_id, username, password)"
    " VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE SET"
    " username = coalesce(EXCLUDED.username, c.username),"
    " password = coalesce(EXCLUDED.password, c.password), updated = now()";

// The STUN credentials luacs set, as (STUN username, password, device): the
// username luacs set, else the one the device reports.
const std::string kStunCredentialsSql =
    "SELECT coalesce(c.stun_username, nullif(" + managed("STUNUsername") +
    ", '')), c.stun_password, c.device_id FROM connection_request_credentials c"
    " LEFT JOIN devices d ON d.id = c.device_id WHERE c.stun_password IS NOT NULL";

const std::string kRememberStunSql =
    "WITH c AS (INSERT INTO connection_request_credentials AS c"
    " (device_id, stun_username, stun_password) VALUES ($1, $2, $3)"
    " ON CONFLICT (device_id) DO UPDATE SET"
    " stun_username = coalesce(EXCLUDED.stun_username, c.stun_username),"
    " stun_password = coalesce(EXCLUDED.stun_password, c.stun_password), updated = now()"
    " RETURNING device_id, stun_username, stun_password)"
    " SELECT coalesce(c.stun_username, nullif(" +
    managed("STUNUsername") +
    ", '')), c.stun_password, c.device_id FROM c LEFT JOIN devices d ON d.id = c.device_id";

// The newest attempt not yet closed by an Inform, from the last 10 minutes
// (a device that informs by itself much later was not woken by it).

using DnsBase = std::unique_ptr<evdns_base, decltype([](evdns_base* d) { evdns_base_free(d, 0); })>;

// The service's connections: four, each statement on the one with the
// fewest waiting, so many wakes overlap their round trips (one connection
// topped out near 500 wakes a second).
constexpr unsigned kConnections = 4;

// The STUN passwords by STUN username, shared with the STUN thread.
struct StunSecrets {
  std::mutex mu;
  std::unordered_map<std::string, std::string> password;  // STUN username -> password
  std::unordered_map<std::string, std::string> username;  // device -> its STUN username

  void set(const std::string& device, const std::string& user, const std::string& pass) {
    std::lock_guard lock(mu);
    if (const auto it = username.find(device); it != username.end() && it->second != user)
      password.erase(it->second);
    username[device] = user;
    password[user] = pass;
  }
  std::optional<std::string> get(const std::string& user) {
    std::lock_guard lock(mu);
    const auto it = password.find(user);
    if (it == password.end()) return std::nullopt;
    return it->second;
  }
};

// What a wake sends, decided from the device's row.
struct Plan {
  std::string transport;   // "http", "udp", "xmpp"
  RequestSpec http;        // the URL and the credentials (every transport signs with them)
  std::string target;      // udp: a STUN username or "host:port"; xmpp: the JID
  std::string refused;     // udp: why luacs will not send there ("" = it may)
  std::string refused_as;  // ... as an outcome: "denied", "no_url"
};

// What the device reported that decides the transport: from the server's
// cached device, or from a row of kLoadSql.
struct Reported {
  std::string url, username, jid, nat, stun_username, udp_address;
  std::chrono::system_clock::time_point udp_address_read{};
};

// What an attempt came to, before the Inform.
struct Finish {
  std::string outcome;
  int http_status = 0;
  std::string detail;
  bool awaits_inform = false;  // "answered" or "sent": the session is awaited
};

bool truthy(std::string_view v) {
  return v == "1" || v == "true" || v == "TRUE" || v == "True";
}

std::chrono::system_clock::time_point from_epoch(std::string_view seconds) {
  const double s = std::strtod(std::string(seconds).c_str(), nullptr);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(s)));
}

Finish from_xmpp(const XmppResult& r) {
  switch (r.outcome) {
    case XmppOutcome::kAnswered:
      return {"answered", 0, "the device answered the XMPP connection request", true};
    case XmppOutcome::kOffline:
      return {"offline", 0, r.reason};
    case XmppOutcome::kAuthFailed:
      return {"auth_failed", 0, r.reason};
    case XmppOutcome::kTimedOut:
      return {"timed_out", 0, r.reason};
    case XmppOutcome::kUnavailable:
      return {"unavailable", 0, "XMPP: " + r.reason};
    case XmppOutcome::kInvalid:
      return {"no_url", 0, "ConnReqJabberID: " + r.reason};
    case XmppOutcome::kRefused:
      break;
  }
  return {"error", 0, r.reason};
}

Finish from_udp(SendResult r, const std::string& target) {
  switch (r) {
    case SendResult::kSent:
      return {"sent", 0, "UDP connection request sent to " + target, true};
    case SendResult::kMerged:
      return {"sent", 0, "merged into the UDP connection request sent to " + target, true};
    case SendResult::kNoBinding:
      return {"no_url", 0, "no STUN binding for STUN username " + target};
    case SendResult::kBadTarget:
      return {"no_url", 0, "UDP target " + target + " is not a numeric address luacs can reach"};
    case SendResult::kDenied:
      return {"denied", 0, "the binding of " + target + " is at a denied address"};
    case SendResult::kSendFailed:
      return {"offline", 0, "no UDP datagram could be sent to " + target};
    case SendResult::kStopped:
      break;
  }
  return {"unavailable", 0, "the STUN server stopped"};
}

}  // namespace

struct Service::Impl {
  struct Entry;
  struct Waiter {
    Impl* impl = nullptr;
    std::string device;
    std::chrono::milliseconds wait{};
    loop::Executor exec;
    Done done;
    loop::Event timer;  // the wait for the session, once the request is out
  };
  struct Entry {
    enum class Phase { kLoading, kQueued, kRequesting, kAwaiting };
    Phase phase = Phase::kLoading;
    int64_t attempt = 0;
    Clock::time_point requested = Clock::now();
    Plan plan;
    std::unique_ptr<HttpRequest> request;
    std::vector<std::unique_ptr<Waiter>> waiters;
    Finish result;
    // When the Inform came, if it came before the request was out.
    std::optional<Clock::time_point> informed_at;
    // What connection_request_auth answered, when the policy has it.
    std::optional<std::pair<std::string, std::string>> policy_credentials;
  };

  explicit Impl(const config::Config& c) : cfg(c), rules(rules_from(c)) {}

  config::Config cfg;
  Rules rules;
  StunServer* stun = nullptr;
  XmppClient* xmpp = nullptr;
  AuthHook auth;
  CachedDevice cached_device;
  std::unordered_map<std::string, Remembered> remembered;
  std::shared_ptr<StunSecrets> secrets = std::make_shared<StunSecrets>();
  loop::Base base;
  std::unique_ptr<loop::Mailbox> mailbox;
  DnsBase dns;
  std::unique_ptr<store::PgPool> pg;
  // Its own connection: the attempt rows, written in order (journal.h).
  std::unique_ptr<store::PgConnection> journal_pg;
  std::unique_ptr<Journal> journal;
  std::thread thread;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries;
  std::deque<std::string> queue;  // HTTP requests waiting for a slot
  unsigned active = 0;            // HTTP requests running

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
    r.transport = entry->plan.transport;
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
    if (auth.wanted && auth.wanted()) return load_for_policy(device);
    load_plan(device);
  }

  void load_plan(const std::string& device) {
    // The server's cached copy spares PostgreSQL the device's parameters.
    if (auto d = cached_device ? cached_device(device) : nullptr) return planned(device, *d);
    pg->query(kLoadSql, {device, cfg.cr_username, cfg.cr_password},
              [this, device](PgReply r) { loaded(device, r); });
  }

  void planned(const std::string& device, const device::Device& d) {
    Entry* e = find(device);
    if (!e) return;
    Reported rep;
    auto param = [&d](const char* name, std::chrono::system_clock::time_point* read = nullptr) {
      for (const char* root : {"InternetGatewayDevice", "Device"}) {
        const auto it = d.parameters.find(std::string(root) + ".ManagementServer." + name);
        if (it == d.parameters.end()) continue;
        if (read) *read = it->second.read_at;
        return it->second.value;
      }
      return std::string();
    };
    rep.url = param("ConnectionRequestURL");
    rep.username = param("ConnectionRequestUsername");
    rep.jid = param("ConnReqJabberID");
    rep.nat = param("NATDetected");
    rep.stun_username = param("STUNUsername");
    rep.udp_address = param("UDPConnectionRequestAddress", &rep.udp_address_read);
    e->plan = plan(rep, {}, {});
    if (const auto it = remembered.find(device);
        it != remembered.end() && Clock::now() - it->second.read < kRememberedTtl)
      return credentials_known(device, it->second, rep.username);
    pg->query(kCredentialsSql, {device}, [this, device, reported = rep.username](PgReply r) {
      if (!find(device)) return;
      if (!r.ok() || r.rows() == 0)
        return complete(device, {"unavailable", false, 0, "store: " + r.error()});
      Remembered m;
      if (!r.is_null(0, 0)) m.username = std::string(r.get(0, 0));
      if (!r.is_null(0, 1)) m.password = std::string(r.get(0, 1));
      m.read = Clock::now();
      if (remembered.size() >= kRememberedMax) remembered.clear();
      remembered[device] = m;
      credentials_known(device, m, reported);
    });
  }

  // What luacs set, else the fleet's; a password set alone goes with the
  // username the device reports.
  void credentials_known(const std::string& device, const Remembered& m,
                         const std::string& reported) {
    Entry* e = find(device);
    if (!e) return;
    std::string user = cfg.cr_username;
    if (m.username)
      user = *m.username;
    else if (m.password && !reported.empty())
      user = reported;
    e->plan.http.credentials = {user, m.password.value_or(cfg.cr_password)};
    begin(device, *e);
  }

  void begin(const std::string& device, Entry& e) {
    journal->begin(device, e.plan.transport, [this, device](int64_t id, const std::string& error) {
      recorded(device, id, error);
    });
  }

  // The whole device, as connection_request_auth(dev) reads it; then the
  // plan as for any device. A device the hook cannot be asked about
  // (gone, a bad row) goes on with the next sources.
  void load_for_policy(const std::string& device) {
    if (auto d = cached_device ? cached_device(device) : nullptr) {
      find(device)->policy_credentials = auth.call(*d);
      return load_plan(device);
    }
    std::string array = "{\"";
    for (char c : device)
      array += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    array += "\"}";
    pg->query(store::kLoadDevicesSql, {array}, [this, device](PgReply r) {
      Entry* e = find(device);
      if (!e) return;
      try {
        if (r.ok())
          for (const auto& d : store::parse_loaded_devices(r))
            if (d.exists && d.id == device) e->policy_credentials = auth.call(*d.device);
      } catch (const std::exception& ex) {
        log::warn("connection request to " + device + ": no device for the policy: " + ex.what());
      }
      load_plan(device);
    });
  }

  void loaded(const std::string& device, const PgReply& r) {
    Entry* e = find(device);
    if (!e) return;
    if (!r.ok()) return complete(device, {"unavailable", false, 0, "store: " + r.error()});
    if (r.rows() == 0) return complete(device, {"no_url", false, 0, "no such device"});
    Reported rep;
    rep.url = r.get(0, 0);
    rep.jid = r.get(0, 3);
    rep.nat = r.get(0, 4);
    rep.stun_username = r.get(0, 5);
    rep.udp_address = r.get(0, 6);
    rep.udp_address_read = from_epoch(r.get(0, 7));
    e->plan = plan(rep, std::string(r.get(0, 1)), std::string(r.get(0, 2)));
    begin(device, *e);
  }

  // The transport (docs/connection-requests.md, "How the transport is
  // chosen") and its target, from what the device reported; the
  // credentials as far as they are known yet.
  Plan plan(const Reported& r, std::string username, std::string password) {
    Plan p;
    p.http = RequestSpec{
        r.url, {std::move(username), std::move(password)}, cfg.cr_allow_basic, cfg.cr_timeout};
    if (xmpp && !r.jid.empty()) {
      p.transport = "xmpp";
      p.target = r.jid;
      return p;
    }
    p.transport = "http";
    if (!stun || !truthy(r.nat)) return p;
    const std::string& stun_user = r.stun_username;
    const std::string& udp_address = r.udp_address;
    std::optional<Binding> binding;
    if (!stun_user.empty()) binding = stun->binding(stun_user);
    if (!binding && udp_address.empty()) return p;  // no binding known: HTTP
    p.transport = "udp";
    std::optional<stun::Address> to;
    if (binding && (udp_address.empty() || binding->seen >= r.udp_address_read)) {
      p.target = stun_user;
      to = binding->address;
    } else {
      p.target = udp_address;
      to = numeric_target(udp_address);
    }
    if (!to) {
      p.refused = "UDPConnectionRequestAddress '" + udp_address + "' is not a numeric host:port";
      p.refused_as = "no_url";
      return p;
    }
    socklen_t len = 0;
    const sockaddr_storage sa = to_sockaddr(*to, len);
    if (auto why = rules.refuse(reinterpret_cast<const sockaddr*>(&sa))) {
      p.refused = "UDP target " + stun::to_string(*to) + ": " + *why;
      p.refused_as = "denied";
    }
    return p;
  }

  // The attempt has its id (its row goes out with the journal's next
  // batch): the request goes out.
  void recorded(const std::string& device, int64_t id, const std::string& error) {
    Entry* e = find(device);
    if (!e) return;
    if (!id) return complete(device, {"unavailable", false, 0, error});
    e->attempt = id;
    // The policy's answer comes first (docs/policy-api.md).
    if (e->policy_credentials)
      e->plan.http.credentials = {e->policy_credentials->first, e->policy_credentials->second};
    e->requested = Clock::now();
    if (e->plan.transport == "xmpp") return send_xmpp(device, *e);
    if (e->plan.transport == "udp") return send_udp(device, *e);
    if (active < cfg.cr_max_concurrent) return run(device, *e);
    e->phase = Entry::Phase::kQueued;
    queue.push_back(device);
  }

  void run(const std::string& device, Entry& e) {
    ++active;
    e.phase = Entry::Phase::kRequesting;
    e.request = std::make_unique<HttpRequest>(
        base.get(), dns.get(), rules, e.plan.http, [this, device, attempt = e.attempt](Result r) {
          --active;
          next_in_queue();
          if (Entry* mine = find(device)) mine->request.reset();  // allowed from its callback
          finished(
              device, attempt,
              {outcome_name(r.outcome), r.http_status, r.detail, r.outcome == Outcome::kAnswered});
        });
  }

  void next_in_queue() {
    while (active < cfg.cr_max_concurrent && !queue.empty()) {
      const std::string device = queue.front();
      queue.pop_front();
      if (Entry* e = find(device); e && e->phase == Entry::Phase::kQueued) run(device, *e);
    }
  }

  // The results of the STUN and XMPP threads come back to this loop (or
  // are dropped once the service stopped).
  std::function<void(Finish)> back_here(const std::string& device, int64_t attempt) {
    return [exec = mailbox->executor(), this, device, attempt](Finish f) {
      exec([this, device, attempt, f = std::move(f)] { finished(device, attempt, f); });
    };
  }

  void send_udp(const std::string& device, Entry& e) {
    e.phase = Entry::Phase::kRequesting;
    if (!e.plan.refused.empty())
      return finished(device, e.attempt, {e.plan.refused_as, 0, e.plan.refused, false});
    stun->send_connection_request(
        e.plan.target, {e.plan.http.credentials.username, e.plan.http.credentials.password},
        [back = back_here(device, e.attempt), target = e.plan.target](SendResult r) {
          back(from_udp(r, target));
        });
  }

  void send_xmpp(const std::string& device, Entry& e) {
    e.phase = Entry::Phase::kRequesting;
    xmpp->connection_request(
        e.plan.target, e.plan.http.credentials.username, e.plan.http.credentials.password,
        [back = back_here(device, e.attempt)](const XmppResult& r) { back(from_xmpp(r)); });
  }

  // Attempt `attempt` is out ("answered", "sent") or failed: recorded, and a
  // failure answered. The device's session may have started already (a
  // UDP request is done only after its last retransmission): then only
  // recorded.
  void finished(const std::string& device, int64_t attempt, const Finish& f) {
    Entry* e = find(device);
    if (e && e->attempt != attempt) e = nullptr;
    if (e) metrics::connection_request_done(e->plan.transport, f.outcome);
    // A failure is answered once it is recorded: whoever asked finds the
    // attempt in connection_requests.
    journal->finish(attempt, f.outcome, f.http_status, f.detail, [this, device, attempt, f](bool) {
      const Entry* now = find(device);
      if (!f.awaits_inform && now && now->attempt == attempt)
        complete(device, {f.outcome, false, f.http_status, f.detail});
    });
    if (!e || !f.awaits_inform) return;
    e->result = f;
    e->phase = Entry::Phase::kAwaiting;
    if (e->informed_at) return session_started(device, *e);
    for (auto& w : e->waiters) start_wait(*w);
  }

  void start_wait(Waiter& w) {
    w.timer.reset(evtimer_new(base.get(), &Impl::on_wait_over, &w));
    const timeval tv = loop::to_timeval(w.wait);
    evtimer_add(w.timer.get(), &tv);
  }

  // One waiter's patience ran out: it gets "answered" or "sent"; the others
  // wait on.
  static void on_wait_over(evutil_socket_t, short, void* arg) {
    auto* w = static_cast<Waiter*>(arg);
    Impl* self = w->impl;
    Entry* e = self->find(w->device);
    if (!e) return;
    const std::string device = w->device;
    const std::string what =
        e->result.outcome == "sent" ? "the request went out" : "the CPE answered";
    deliver(*w, {e->result.outcome, false, e->result.http_status,
                 what + " but no session started within " + std::to_string(w->wait.count()) + " ms",
                 -1, e->attempt, e->plan.transport});
    std::erase_if(e->waiters, [w](const auto& p) { return p.get() == w; });
    if (e->waiters.empty()) self->entries.erase(device);
  }

  void session_started(const std::string& device, Entry& e) {
    const auto latency = std::max(e.informed_at.value_or(Clock::now()), e.requested) - e.requested;
    metrics::connection_request_informed(e.plan.transport, latency);
    complete(device, {"informed", true, e.result.http_status, "the session started",
                      std::chrono::duration_cast<std::chrono::milliseconds>(latency).count()});
  }

  void informed(const std::string& device) {
    if (journal) journal->informed(device);
    Entry* e = find(device);
    if (!e) return;
    // A UDP request that did its job: no more retransmissions, and the next
    // wake is a new request, not merged into this one.
    if (e->plan.transport == "udp" &&
        (e->phase == Entry::Phase::kAwaiting || e->phase == Entry::Phase::kRequesting))
      stun->settled(e->plan.target);
    if (e->phase == Entry::Phase::kAwaiting) return session_started(device, *e);
    // Before the request left, the Inform was not its doing.
    if (e->phase != Entry::Phase::kRequesting) return;
    e->informed_at = Clock::now();
    // An HTTP request waits for the CPE's answer (its status is part of the
    // result); a UDP one is still retransmitting, an XMPP one waits for the
    // IQ's result: the session answers the wake now, the outcome is
    // recorded when it comes (finished()).
    if (e->plan.transport != "http") {
      metrics::connection_request_done(e->plan.transport,
                                       e->plan.transport == "udp" ? "sent" : "answered");
      session_started(device, *e);
    }
  }

  // Fills `secrets` from rows of (STUN username, password, device).
  void keep_secrets(const PgReply& r) {
    if (!r.ok()) return log::warn("STUN credentials not loaded: " + r.error());
    for (int i = 0; i < r.rows(); ++i)
      if (!r.is_null(i, 0) && !r.is_null(i, 1))
        secrets->set(std::string(r.get(i, 2)), std::string(r.get(i, 0)), std::string(r.get(i, 1)));
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
        if (const auto it = im.remembered.find(device_id); it != im.remembered.end()) {
          if (username) it->second.username = username;
          if (password) it->second.password = password;
        }
        im.pg->query(kRememberSql, {device_id, std::move(username), std::move(password)},
                     [&im, device_id](PgReply rep) {
                       // A read that raced the write may have cached the old.
                       im.remembered.erase(device_id);
                       if (!rep.ok())
                         log::warn("connection request credentials of " + device_id +
                                   " not kept: " + rep.error());
                     });
      });
}

void Service::remember_stun_credentials(const std::string& device_id,
                                        std::optional<std::string> username,
                                        std::optional<std::string> password) {
  auto& im = *impl_;
  if (!im.mailbox) return;
  im.mailbox->post(
      [&im, device_id, username = std::move(username), password = std::move(password)]() mutable {
        if (!im.pg) return;
        im.pg->query(kRememberStunSql, {device_id, std::move(username), std::move(password)},
                     [&im](PgReply rep) { im.keep_secrets(rep); });
      });
}

void Service::set_cached_device(CachedDevice lookup) {
  impl_->cached_device = std::move(lookup);
}

void Service::set_auth_hook(AuthHook hook) {
  impl_->auth = std::move(hook);
}

void Service::set_stun(StunServer* stun) {
  impl_->stun = stun;
}

void Service::set_xmpp(XmppClient* xmpp) {
  impl_->xmpp = xmpp;
}

std::function<std::optional<std::string>(const std::string&)> Service::stun_credentials() const {
  return [secrets = impl_->secrets](const std::string& user) { return secrets->get(user); };
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
    im.pg = std::make_unique<store::PgPool>(im.base.get(), im.cfg.store_dsn, kConnections,
                                            "luacs connreq");
    im.pg->start();
    store::PgConnection::Options o;
    o.dsn = im.cfg.store_dsn;
    o.application_name = "luacs connreq journal";
    im.journal_pg = std::make_unique<store::PgConnection>(im.base.get(), o);
    im.journal = std::make_unique<Journal>(im.base.get(), *im.journal_pg);
    // The STUN passwords luacs set, read again at every (re)connect: a query
    // sent before the connection is up fails at once.
    im.journal_pg->on_state = [&im](bool up) {
      if (up) im.journal_pg->query(kStunCredentialsSql, [&im](PgReply r) { im.keep_secrets(r); });
    };
    im.journal_pg->start();
  }
  im.thread = std::thread([b = im.base.get()] { event_base_loop(b, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void Service::stop() {
  auto& im = *impl_;
  if (!im.thread.joinable()) return;
  im.mailbox->post([b = im.base.get()] { event_base_loopbreak(b); });
  im.thread.join();
  if (im.pg) im.pg->close();
  if (im.journal_pg) im.journal_pg->close();
  im.entries.clear();  // aborts the attempts (and their DNS lookups) unanswered
  im.queue.clear();
  im.pg.reset();
  im.journal.reset();
  im.journal_pg.reset();
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
