#include "core/server/worker.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/cwmp/device_id.h"
#include "core/server/task_rpc.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/net.h"

namespace luacs::server {
namespace {

// {"result", "detail", "cpe_requests", "rpcs": [[method, outcome]...],
// "duration_ms"}, written directly: this runs for every session.
std::string summary_json(const cwmp::Session& s) {
  auto quoted = [](std::string& out, std::string_view text) {
    bool plain = true;
    for (unsigned char c : text) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    if (plain) {
      out += '"';
      out += text;
      out += '"';
    } else {
      out += util::json_text(std::string(text));  // escapes, and replaces invalid UTF-8
    }
  };
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cwmp::Clock::now() - s.started());
  std::string out = "{\"result\": ";
  quoted(out, cwmp::to_string(s.end_reason()));
  out += ", \"detail\": ";
  quoted(out, s.end_detail());
  out += ", \"cpe_requests\": ";
  out += std::to_string(s.cpe_requests());
  out += ", \"rpcs\": [";
  bool first = true;
  for (const auto& r : s.rpcs()) {
    out += first ? "[" : ", [";
    first = false;
    quoted(out, r.method);
    out += ", ";
    quoted(out, r.outcome);
    out += ']';
  }
  out += "], \"duration_ms\": ";
  out += std::to_string(ms.count());
  out += '}';
  return out;
}

// The base URL CPEs fetch pushed files from: [files] url, else the host the
// CPE reached the CWMP port on, with the file server's port.
std::string files_base(const Shared& sh, std::string_view host) {
  if (!sh.cfg.files_url.empty()) return sh.cfg.files_url;
  if (!sh.files_port || host.empty()) return {};
  std::string h(host);
  if (h.front() == '[') {
    auto close = h.find(']');
    if (close == std::string::npos) return {};
    h.resize(close + 1);
  } else if (auto colon = h.find(':'); colon != std::string::npos) {
    h.resize(colon);
  }
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return {};  // not a host name: no URL rather than a forged one
  }
  if (h.empty()) return {};
  return "http://" + h + ":" + std::to_string(sh.files_port);
}

}  // namespace

// What every session reports to: it keeps the session's result for the
// store, runs the policy (lua::Run) and then the tasks queued for the
// device, and passes every event on to the user handler (tests) first.
class Driver final : public cwmp::SessionHandler {
 public:
  explicit Driver(Worker& w) : w_(w) {}

  void on_inform(cwmp::Session& s) override {
    if (auto* u = w_.user_handler()) u->on_inform(s);
    lua::Engine* engine = w_.engine();
    SessionSlot* slot = engine ? w_.find_session(s.id()) : nullptr;
    if (!slot) return;
    lua::RunContext ctx;
    ctx.session = &s;
    ctx.device = slot->device;
    ctx.result = &slot->result;
    ctx.host = slot->host;
    ctx.peer = slot->peer;
    slot->run = engine->start(std::move(ctx));
  }
  void on_cpe_request(cwmp::Session& s, const soap::Body& b) override {
    if (auto* u = w_.user_handler()) u->on_cpe_request(s, b);
    SessionSlot* slot = w_.find_session(s.id());
    if (!slot || !slot->run) return;
    if (const auto* tc = std::get_if<soap::TransferComplete>(&b)) {
      lua::TransferInfo t;
      t.command_key = tc->command_key;
      t.fault_code = tc->fault.code;
      t.fault_string = tc->fault.string;
      t.start_time = tc->start_time;
      t.complete_time = tc->complete_time;
      slot->run->transfer_complete(std::move(t));
    } else if (const auto* atc = std::get_if<soap::AutonomousTransferComplete>(&b)) {
      lua::TransferInfo t;
      t.autonomous = true;
      t.command_key = "";
      t.fault_code = atc->fault.code;
      t.fault_string = atc->fault.string;
      t.start_time = atc->start_time;
      t.complete_time = atc->complete_time;
      t.is_download = atc->is_download;
      t.file_type = atc->file_type;
      t.transfer_url = atc->transfer_url;
      t.target_file_name = atc->target_file_name;
      t.file_size = atc->file_size;
      slot->run->transfer_complete(std::move(t));
    }
  }
  // The policy's hooks first, then the device's tasks in the order they
  // were queued, one at a time.
  void on_acs_turn(cwmp::Session& s) override {
    if (auto* u = w_.user_handler()) {
      u->on_acs_turn(s);
      if (s.queued()) return;
    }
    SessionSlot* slot = w_.find_session(s.id());
    if (!slot) return;
    if (slot->run && slot->run->advance() == lua::Run::Step::kWaiting) return;
    if (!slot->device) return;
    const auto& tasks = slot->device->pending_tasks;
    while (slot->next_task < tasks.size()) {
      const store::Task& t = tasks[slot->next_task++];
      if (run_task(s, *slot, t)) return;
    }
  }
  void on_rpc_done(cwmp::Session& s, const soap::Body& request,
                   const cwmp::RpcOutcome& o) override {
    if (SessionSlot* slot = w_.find_session(s.id()); slot && o.ok()) {
      auto now = std::chrono::system_clock::now();
      auto& params = slot->result.parameters;
      if (auto* gpv = std::get_if<soap::GetParameterValuesResponse>(&o.response)) {
        for (const auto& p : gpv->parameters) params.emplace_back(p, now);
      } else if (auto* spv = std::get_if<soap::SetParameterValues>(&request)) {
        for (const auto& p : spv->parameters) params.emplace_back(p, now);
      }
      if (store::Store* st = w_.shared().store) {
        // Remember what was sent, so the TransferComplete finds its transfer.
        auto sent = [&](const auto& rpc, bool is_download) {
          store::Transfer t;
          t.device_id = s.device_id();
          t.command_key = rpc.command_key;
          t.is_download = is_download;
          t.file_type = rpc.file_type;
          t.url = rpc.url;
          st->record_transfer_sent(std::move(t));
        };
        if (auto* d = std::get_if<soap::Download>(&request)) sent(*d, true);
        if (auto* u = std::get_if<soap::Upload>(&request)) sent(*u, false);
      }
    }
    if (auto* u = w_.user_handler()) u->on_rpc_done(s, request, o);
  }
  void on_end(cwmp::Session& s) override {
    if (auto* u = w_.user_handler()) u->on_end(s);
    if (SessionSlot* slot = w_.find_session(s.id()); slot && slot->run) slot->run->end();
  }

 private:
  // Runs one task; true when it waits for the CPE (an RPC is queued).
  bool run_task(cwmp::Session& s, SessionSlot& slot, const store::Task& t) {
    auto& results = slot.result.task_results;
    if (t.expires && *t.expires <= std::chrono::system_clock::now()) {
      results.push_back({t.id, false, R"({"error":"expired"})"});
      return false;
    }
    std::string error;
    if (t.name == "tag" || t.name == "untag") {
      std::string tag;
      try {
        tag = nlohmann::json::parse(t.args).value("tag", "");
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (tag.empty()) {
        fail(slot, t, error.empty() ? "no tag given" : error);
        return false;
      }
      auto& add = slot.result.tags_added;
      auto& remove = slot.result.tags_removed;
      auto& to = t.name == "tag" ? add : remove;
      auto& from = t.name == "tag" ? remove : add;
      from.erase(std::remove(from.begin(), from.end(), tag), from.end());
      to.push_back(tag);
      results.push_back({t.id, true, "{}"});
      return false;
    }
    if (t.name.rfind("tasks.", 0) == 0) {
      if (!slot.run) {
        fail(slot, t, "no policy is loaded to run " + t.name);
        return false;
      }
      slot.run->add_task(t.name.substr(6), t.args,
                         [this, id = t.id, cookie = s.id()](bool ok, std::string json) {
                           if (SessionSlot* sl = w_.find_session(cookie))
                             sl->result.task_results.push_back({id, ok, std::move(json)});
                         });
      return slot.run->advance() == lua::Run::Step::kWaiting;
    }
    auto rpc = task_rpc(t.name, t.args, &error);
    if (!rpc) {
      fail(slot, t, error);
      return false;
    }
    // A task whose RPC got no answer (timeout, session ended) stays pending
    // and runs again next session; an answer or a CPE fault settles it.
    s.queue(std::move(*rpc), [this, id = t.id, cookie = s.id()](const cwmp::RpcOutcome& o) {
      SessionSlot* sl = w_.find_session(cookie);
      if (!sl || o.kind == cwmp::RpcOutcome::Kind::kError) return;
      std::string json = outcome_json(o);
      sl->result.task_results.push_back({id, o.ok(), json});
      if (!o.ok())
        sl->result.faults.push_back(
            {sl->session->device_id(), "task", o.fault.code, o.fault.string, json});
    });
    return true;
  }

  void fail(SessionSlot& slot, const store::Task& t, const std::string& why) {
    nlohmann::json j = {{"error", why}};
    std::string json = util::json_text(j);
    slot.result.task_results.push_back({t.id, false, json});
    slot.result.faults.push_back({t.device_id, "task", 0, "task '" + t.name + "': " + why, json});
  }

  Worker& w_;
};

namespace {

std::string new_cookie() {
  return util::random_hex(16);
}

// The one log line a session leaves behind.
std::string session_line(const cwmp::Session& s, const std::string& peer, const std::string& auth) {
  std::string line = "session device=";
  line += s.device_id().empty() ? "-" : s.device_id();
  line += " peer=" + peer + " events=\"";
  bool first = true;
  for (const auto& e : s.inform().events) {
    if (!first) line += ',';
    first = false;
    line += e.code;
    if (!e.command_key.empty()) line += "(" + e.command_key + ")";
  }
  line += "\" cpe_requests=" + std::to_string(s.cpe_requests()) + " rpcs=\"";
  first = true;
  for (const auto& r : s.rpcs()) {
    if (!first) line += ',';
    first = false;
    line += r.method + ":" + r.outcome;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(cwmp::Clock::now() - s.started());
  line += "\" duration_ms=" + std::to_string(ms.count());
  line += " auth=" + auth;
  line += " result=";
  line += cwmp::to_string(s.end_reason());
  if (!s.end_detail().empty()) line += " detail=\"" + s.end_detail() + "\"";
  return line;
}

}  // namespace

Worker::Worker(Shared& shared, int index) : shared_(shared), index_(index) {
  base_ = event_base_new();
  if (!base_) throw std::runtime_error("event_base_new failed");
  // Two priorities: sessions in flight (and the store's answers they wait
  // for) before new connections. Saturated, a worker finishes what it
  // started; new arrivals wait, and past [limits] max_queue_delay get 503.
  event_base_priority_init(base_, 2);
  inbox_event_ = event_new(base_, -1, 0, &Worker::on_inbox, this);
  event_priority_set(inbox_event_, kPriorityInFlight);
  mailbox_->wake = inbox_event_;
  sweep_event_ = event_new(base_, -1, EV_PERSIST, &Worker::on_sweep, this);
  pulse_event_ = event_new(base_, -1, EV_PERSIST, &Worker::on_pulse, this);
  event_priority_set(pulse_event_, kPriorityNew);
  stop_event_ = event_new(
      base_, -1, 0,
      [](evutil_socket_t, short, void* arg) {
        event_base_loopbreak(static_cast<event_base*>(arg));
      },
      base_);
}

Worker::~Worker() {
  stop();
  // Sessions first (they may reference connections), then connections. Each
  // leaves its log line and its result for the store: a clean stop loses
  // nothing.
  std::vector<std::string> cookies;
  for (const auto& [cookie, slot] : sessions_) cookies.push_back(cookie);
  for (const auto& cookie : cookies) end_session(cookie);
  connections_.clear();
  {
    std::lock_guard lock(mailbox_->mu);
    mailbox_->wake = nullptr;
    mailbox_->tasks.clear();
  }
  for (auto* l : listeners_) evconnlistener_free(l);
  for (auto& h : inbox_) {
    evutil_closesocket(h.fd);
    if (h.input) evbuffer_free(h.input);
  }
  event_free(inbox_event_);
  event_free(sweep_event_);
  event_free(pulse_event_);
  event_free(stop_event_);
  handler_.reset();
  engine_.reset();
  event_base_free(base_);
}

void Worker::listen(const std::vector<config::ListenAddress>& addrs, std::vector<uint16_t>& ports) {
  for (size_t i = 0; i < addrs.size(); ++i) {
    const auto& a = addrs[i];
    const util::ListenAddr addr = util::listen_addr(a.host, ports[i] ? ports[i] : a.port);
    if (a.tls)
      throw std::runtime_error("cannot listen on " + addr.spec + ": HTTPS is not supported yet");
    unsigned flags =
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC;
    if (addr.ss.ss_family == AF_INET6) flags |= LEV_OPT_BIND_IPV6ONLY;
    evconnlistener* l = evconnlistener_new_bind(base_, &Worker::on_accept, this, flags,
                                                static_cast<int>(cfg().listen_backlog), addr.sa(),
                                                static_cast<int>(addr.len));
    if (!l) {
      throw std::runtime_error("cannot listen on " + addr.spec + ": " +
                               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    if (ports[i] == 0) ports[i] = util::bound_port(evconnlistener_get_fd(l));
    listeners_.push_back(l);
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::run() {
  if (shared_.factory) handler_ = shared_.factory(index_);
  if (shared_.policies) {
    lua::FileServices files = shared_.files;
    files.base_url = [&sh = shared_](std::string_view host) { return files_base(sh, host); };
    engine_ = std::make_unique<lua::Engine>(*shared_.policies, std::move(files), index_);
  }
  driver_ = std::make_unique<Driver>(*this);
  timeval one_second{1, 0};
  event_add(sweep_event_, &one_second);
  if (cfg().max_queue_delay.count() > 0) {
    last_pulse_ = std::chrono::steady_clock::now();
    const timeval pulse{0, std::chrono::microseconds(kPulse).count()};
    event_add(pulse_event_, &pulse);
  }
  event_base_dispatch(base_);
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  event_active(stop_event_, 0, 0);
  thread_.join();
}

void Worker::post_handover(Handover h) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(std::move(h));
  }
  event_active(inbox_event_, 0, 0);
}

void Worker::on_inbox(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  std::vector<Handover> batch;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(w->inbox_mu_);
    batch.swap(w->inbox_);
  }
  {
    std::lock_guard lock(w->mailbox_->mu);
    tasks.swap(w->mailbox_->tasks);
  }
  for (auto& h : batch) {
    auto c = std::make_unique<Connection>(*w, std::move(h));
    Connection* raw = c.get();
    w->connections_.emplace(raw->id(), std::move(c));
    raw->resume();  // may close it again: nothing may touch raw after this
  }
  for (auto& fn : tasks) fn();
}

void Worker::post(std::function<void()> fn) {
  executor()(std::move(fn));
}

store::Executor Worker::executor() {
  return [mb = mailbox_](std::function<void()> fn) {
    std::lock_guard lock(mb->mu);
    if (!mb->wake) return;
    mb->tasks.push_back(std::move(fn));
    event_active(mb->wake, 0, 0);
  };
}

void Worker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  auto& st = w->shared_.stats;
  st.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  if (st.connections_open.load(std::memory_order_relaxed) >= w->cfg().max_connections) {
    evutil_closesocket(fd);
    return;
  }
  auto c = std::make_unique<Connection>(*w, fd, util::format_peer(sa));
  w->connections_.emplace(c->id(), std::move(c));
}

void Worker::on_pulse(evutil_socket_t, short, void* arg) {
  auto* w = static_cast<Worker*>(arg);
  const auto now = std::chrono::steady_clock::now();
  const auto late = now - w->last_pulse_ - kPulse;
  w->last_pulse_ = now;
  // Shed for a while after a late pulse (hysteresis, as CoDel keeps
  // dropping for an interval): one on-time pulse between two bursts does
  // not mean the worker keeps up again.
  const auto delay = w->cfg().max_queue_delay;
  if (late > delay)
    w->saturated_until_ = now + std::max<std::chrono::nanoseconds>(2 * delay, 10 * kPulse);
}

void Worker::on_sweep(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->sweep();
}

void Worker::sweep() {
  auto now = cwmp::Clock::now();
  std::vector<std::string> expired;
  for (auto& [cookie, slot] : sessions_)
    if (slot->session->expired(now)) expired.push_back(cookie);
  for (const auto& cookie : expired) {
    auto it = sessions_.find(cookie);
    SessionSlot* slot = it->second.get();
    slot->session->abort(cwmp::EndReason::kTimeout, "no message from the CPE in time");
    Connection* c = slot->conn;
    end_session(cookie);
    if (c) c->close_now();
  }
}

soap::Reader* Worker::acquire_reader() {
  if (readers_.empty()) {
    soap::ReaderLimits limits;
    limits.max_depth = cfg().xml_max_depth;
    return new soap::Reader(limits);
  }
  soap::Reader* r = readers_.back().release();
  readers_.pop_back();
  return r;
}

void Worker::release_reader(soap::Reader* r) {
  readers_.emplace_back(r);
}

SessionSlot* Worker::find_session(const std::string& cookie) {
  auto it = sessions_.find(cookie);
  return it == sessions_.end() ? nullptr : it->second.get();
}

SessionSlot* Worker::create_session(const std::string& device, const std::string& peer) {
  std::string cookie = new_cookie();
  if (!shared_.directory.claim_device(device, cookie) &&
      !(end_abandoned_session(device) && shared_.directory.claim_device(device, cookie)))
    return nullptr;
  shared_.directory.add(cookie, index_);
  auto slot = std::make_unique<SessionSlot>();
  cwmp::SessionLimits limits;
  limits.max_rpcs = cfg().rpcs_per_session;
  limits.session_timeout = cfg().session_timeout;
  limits.idle_timeout = cfg().idle_timeout;
  slot->session =
      std::make_unique<cwmp::Session>(cookie, limits, driver_.get(), cwmp::Clock::now());
  slot->result.inform_time = std::chrono::system_clock::now();
  slot->peer = peer;
  SessionSlot* raw = slot.get();
  sessions_.emplace(cookie, std::move(slot));
  shared_.stats.sessions_started.fetch_add(1, std::memory_order_relaxed);
  shared_.stats.sessions_live.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

bool Worker::end_abandoned_session(const std::string& device) {
  const std::string cookie = shared_.directory.device_session(device);
  if (cookie.empty()) return true;  // ended meanwhile
  SessionSlot* slot = find_session(cookie);
  if (!slot) return false;
  Connection* c = slot->conn;
  if (c && !c->peer_gone()) return false;
  slot->session->abort(cwmp::EndReason::kAborted,
                       "the CPE went away; a new Inform began another session");
  end_session(cookie);
  if (c) c->close_now();
  return true;
}

bool Worker::end_session(const std::string& cookie, std::function<void(bool ok)> committed) {
  auto it = sessions_.find(cookie);
  if (it == sessions_.end()) return false;
  std::unique_ptr<SessionSlot> slot = std::move(it->second);
  sessions_.erase(it);
  cwmp::Session& s = *slot->session;
  if (!s.ended()) s.abort(cwmp::EndReason::kAborted, "ended by the server");
  auto& st = shared_.stats;
  st.sessions_live.fetch_sub(1, std::memory_order_relaxed);
  (s.end_reason() == cwmp::EndReason::kCompleted ? st.sessions_completed : st.sessions_failed)
      .fetch_add(1, std::memory_order_relaxed);
  if (log::enabled(log::Level::kInfo))
    log::info(session_line(s, slot->peer, slot->auth.empty() ? "-" : slot->auth));
  shared_.directory.remove(cookie, s.device_id());
  if (slot->conn) slot->conn->detach_session();
  if (!shared_.store || s.device_id().empty()) return false;

  store::SessionResult& r = slot->result;
  const soap::Inform& in = s.inform();
  r.device_id = s.device_id();
  r.identity = in.device_id;
  r.data_model_root = cwmp::data_model_root(in);
  r.remote_address = util::address_of(slot->peer);
  r.events = in.events;
  // The Inform's values first: values read later in the session win. An
  // Inform value the store already holds is not written again (its read_at
  // stays the time it was first seen so; last_inform says it still was): a
  // periodic Inform then rewrites no parameters at all.
  const store::Device* known = slot->device.get();
  std::vector<std::pair<soap::ParameterValue, store::Time>> params;
  params.reserve(in.parameters.size() + r.parameters.size());
  for (const auto& p : in.parameters) {
    if (known) {
      auto it = known->parameters.find(p.name);
      if (it != known->parameters.end() && it->second.value == p.value && it->second.type == p.type)
        continue;
    }
    params.emplace_back(p, r.inform_time);
  }
  std::move(r.parameters.begin(), r.parameters.end(), std::back_inserter(params));
  r.parameters = std::move(params);
  r.summary = summary_json(s);
  // The snapshot goes before the write: held by nobody else, the cached
  // device is then updated in place instead of copied.
  slot->run.reset();
  slot->device.reset();
  bool durable = !r.tags_added.empty() || !r.tags_removed.empty() || !r.faults.empty() ||
                 !r.task_results.empty();
  if (durable && committed) {
    shared_.store->write_session(std::move(r), executor(), std::move(committed));
    return true;
  }
  shared_.store->write_session(std::move(r));
  return false;
}

Connection* Worker::find_connection(uint64_t id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

void Worker::connection_closed(Connection* c) {
  connections_.erase(c->id());
}

}  // namespace luacs::server
