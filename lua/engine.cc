// The per-worker engine and the policy side of a session: hooks and policy
// tasks as coroutines, and the `dev` API they call.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/cwmp/device_id.h"
#include "core/cwmp/param_batches.h"
#include "core/util/hex.h"
#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/net.h"
#include "core/util/text.h"
#include "lua/binding.h"
#include "lua/json.h"
#include "lua/policy.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

constexpr const char* kDevMeta = "luacs.dev";
constexpr size_t kMaxScriptBytes = 1 << 20;
constexpr size_t kMaxNames = 4096;  // names in one dev:get / dev:set call

using SteadyClock = std::chrono::steady_clock;

int64_t epoch(device::Time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool truthy(std::string_view v) {
  return v == "1" || v == "true" || v == "TRUE" || v == "True";
}

// Rate limit of policy error lines, per worker thread.
bool may_log_error() {
  thread_local int64_t window = 0;
  thread_local int count = 0;
  thread_local uint64_t suppressed = 0;
  int64_t now = epoch(std::chrono::system_clock::now());
  if (now != window) {
    if (suppressed) log::warn("policy errors: " + std::to_string(suppressed) + " more not logged");
    window = now;
    count = 0;
    suppressed = 0;
  }
  if (++count <= 20) return true;
  ++suppressed;
  return false;
}

}  // namespace

// The RPCs one call of the dev API waits for, and what came back.
struct Call {
  enum class Kind { kGet, kSet, kAttributes, kSingle };
  Run::Impl* run = nullptr;  // null once the run is gone
  Kind kind = Kind::kSingle;
  int outstanding = 0;
  cwmp::ParamAnswers answers;  // every kind: the failures; kGet, kSet, kAttributes: the values
  soap::Body response;         // kSingle
  std::string command_key;     // alter / upgrade
  bool returns_key = false;
};

struct DevHandle {
  Run::Impl* run;
};

// inform.params: a read-only view of the Inform's ParameterList.
struct ParamsHandle {
  Run::Impl* run;
};
constexpr const char* kParamsMeta = "luacs.inform_params";

struct Run::Impl {
  std::shared_ptr<State> st;
  PolicyManager* manager = nullptr;
  const FileServices* files = nullptr;
  RunContext ctx;

  // This session's view of the device: the Inform's values and whatever
  // was read or set, on top of the stored parameters.
  std::unordered_map<std::string, device::StoredParameter> overlay;
  device::StoredParameter scratch;

  struct Job {
    enum class Kind { kTransfer, kEvent, kInform, kTask } kind = Kind::kInform;
    size_t index = 0;  // transfer or event
    std::string function, args;
    TaskDone done;
  };
  std::vector<TransferInfo> transfers;
  std::vector<Job> jobs;
  size_t next_job = 0;
  bool planned = false;
  Job job;  // the running one
  lua_State* co = nullptr;
  int co_ref = LUA_NOREF;
  int dev_ref = LUA_NOREF;
  int inform_ref = LUA_NOREF;
  DevHandle* dev = nullptr;
  ParamsHandle* params = nullptr;
  std::shared_ptr<Call> call;
  bool ended = false;

  ~Impl() { end(); }

  lua_State* L() const { return st->L(); }
  std::string files_base() const {
    return files && files->base_url ? files->base_url(ctx.host) : std::string();
  }
  const std::string& device_id() const { return ctx.session->device_id(); }

  void end() {
    if (ended) return;
    ended = true;
    if (call) call->run = nullptr;
    call.reset();
    if (dev) dev->run = nullptr;
    lua_State* L = st->L();
    luaL_unref(L, LUA_REGISTRYINDEX, co_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, dev_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, inform_ref);
    co = nullptr;
    co_ref = dev_ref = inform_ref = LUA_NOREF;
    if (params) params->run = nullptr;
    // A collection step between sessions, not after every one.
    if (++st->runs_since_gc >= 64) {
      st->runs_since_gc = 0;
      lua_gc(L, LUA_GCSTEP, 0);
    }
  }

  // ---- the view ----

  // The newest known value: read or set in this session, then the Inform's,
  // then the stored one. The pointer is good until the next call.
  const device::StoredParameter* known(std::string_view name) {
    if (!overlay.empty()) {
      if (auto it = overlay.find(std::string(name)); it != overlay.end()) return &it->second;
    }
    for (const auto& p : ctx.session->inform().parameters) {
      if (p.name == name) {
        scratch = {p.value, p.type, ctx.result->inform_time};
        return &scratch;
      }
    }
    if (ctx.device) {
      const auto& stored = ctx.device->parameters;
      if (auto it = stored.find(std::string(name)); it != stored.end()) return &it->second;
    }
    return nullptr;
  }
  void learn(const soap::ParameterValue& p) {
    overlay[p.name] = device::StoredParameter{p.value, p.type, std::chrono::system_clock::now()};
  }
  bool has_tag(const std::string& t) const {
    const auto& res = *ctx.result;
    if (std::find(res.tags_removed.begin(), res.tags_removed.end(), t) != res.tags_removed.end())
      return false;
    if (std::find(res.tags_added.begin(), res.tags_added.end(), t) != res.tags_added.end())
      return true;
    return ctx.device && ctx.device->tags.count(t);
  }
  std::set<std::string> tags() const {
    std::set<std::string> t;
    if (ctx.device) t = ctx.device->tags;
    for (const auto& a : ctx.result->tags_added) t.insert(a);
    for (const auto& r : ctx.result->tags_removed) t.erase(r);
    return t;
  }
  std::string root() const {
    if (ctx.device && !ctx.device->data_model_root.empty()) return ctx.device->data_model_root;
    return cwmp::data_model_root(ctx.session->inform());
  }
  // The key of State::invalid_names: what fixes a device's data model.
  const std::string& model_key() {
    if (model_key_.empty()) {
      const auto& id = ctx.session->inform().device_id;
      const device::StoredParameter* version = known(root() + ".DeviceInfo.SoftwareVersion");
      model_key_ = id.oui + '\x1f' + id.product_class + '\x1f' + (version ? version->value : "");
    }
    return model_key_;
  }
  std::string model_key_;

  void add_fault(const std::string& message, const std::string& detail) {
    ctx.result->faults.push_back({device_id(), "policy", 0, message, detail});
  }

  // ---- RPCs ----

  std::shared_ptr<Call> new_call(Call::Kind kind) {
    call = std::make_shared<Call>();
    call->run = this;
    call->kind = kind;
    return call;
  }

  void send(const std::shared_ptr<Call>& c, soap::Body body,
            std::function<void(const std::shared_ptr<Call>&, const cwmp::RpcOutcome&)> on) {
    ++c->outstanding;
    ctx.session->queue(std::move(body), [c, on = std::move(on)](const cwmp::RpcOutcome& o) {
      --c->outstanding;
      if (c->run) on(c, o);
    });
  }

  void get_batch(const std::shared_ptr<Call>& c, soap::GetParameterValues rpc) {
    send(c, rpc, [rpc](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
      Impl* r = c->run;
      auto& a = c->answers;
      size_t values = a.values.size(), invalid = a.invalid.size();
      auto next = cwmp::merge(a, rpc, o);
      for (size_t i = values; i < a.values.size(); ++i) r->learn(a.values[i]);
      for (size_t i = invalid; i < a.invalid.size(); ++i)
        r->st->invalid_names.add(r->model_key(), a.invalid[i]);
      for (auto& n : next) r->get_batch(c, std::move(n));
    });
  }

  void set_batch(const std::shared_ptr<Call>& c, cwmp::SetBatch batch) {
    send(c, batch.rpc, [batch](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
      Impl* r = c->run;
      if (o.ok())
        for (const auto& p : batch.rpc.parameters) r->learn(p);
      for (auto& n : cwmp::merge(c->answers, batch, o)) r->set_batch(c, std::move(n));
    });
  }

  void single(const std::shared_ptr<Call>& c, soap::Body body) {
    send(c, std::move(body), [](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
      if (o.ok())
        c->response = o.response;
      else
        cwmp::note_failure(c->answers, o);
    });
  }

  // ---- running hooks and tasks ----

  void plan() {
    planned = true;
    if (st->hook(kOnTransferComplete) != LUA_NOREF)
      for (size_t i = 0; i < transfers.size(); ++i)
        jobs.push_back({Job::Kind::kTransfer, i, {}, {}, {}});
    if (st->hook(kOnEvent) != LUA_NOREF)
      for (size_t i = 0; i < ctx.session->inform().events.size(); ++i)
        jobs.push_back({Job::Kind::kEvent, i, {}, {}, {}});
    if (st->hook(kOnInform) != LUA_NOREF) jobs.push_back({Job::Kind::kInform, 0, {}, {}, {}});
  }

  std::string job_name() const {
    switch (job.kind) {
      case Job::Kind::kTransfer:
        return kHookNames[kOnTransferComplete];
      case Job::Kind::kEvent:
        return kHookNames[kOnEvent];
      case Job::Kind::kInform:
        return kHookNames[kOnInform];
      case Job::Kind::kTask:
        return "tasks." + job.function;
    }
    return "?";
  }

  void push_dev(lua_State* L) {
    if (dev_ref == LUA_NOREF) {
      dev = static_cast<DevHandle*>(lua_newuserdatauv(L, sizeof(DevHandle), 0));
      dev->run = this;
      luaL_setmetatable(L, kDevMeta);
      lua_pushvalue(L, -1);
      dev_ref = luaL_ref(L, LUA_REGISTRYINDEX);
      return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, dev_ref);
  }

  void push_inform(lua_State* L) {
    if (inform_ref != LUA_NOREF) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, inform_ref);
      return;
    }
    const soap::Inform& in = ctx.session->inform();
    lua_createtable(L, 0, 5);
    lua_createtable(L, static_cast<int>(in.events.size()), 0);
    lua_Integer i = 1;
    for (const auto& e : in.events) {
      lua_pushlstring(L, e.code.data(), e.code.size());
      lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "events");
    lua_createtable(L, 0, 0);
    for (const auto& e : in.events) {
      if (e.command_key.empty()) continue;
      lua_pushlstring(L, e.command_key.data(), e.command_key.size());
      lua_setfield(L, -2, e.code.c_str());
    }
    lua_setfield(L, -2, "command_keys");
    // inform.params reads the Inform in place: most hooks look at a few
    // values, if any, so no table of every parameter is built.
    params = static_cast<ParamsHandle*>(lua_newuserdatauv(L, sizeof(ParamsHandle), 0));
    params->run = this;
    luaL_setmetatable(L, kParamsMeta);
    lua_setfield(L, -2, "params");
    lua_pushinteger(L, in.retry_count);
    lua_setfield(L, -2, "retry_count");
    lua_pushlstring(L, in.current_time.data(), in.current_time.size());
    lua_setfield(L, -2, "current_time");
    lua_pushvalue(L, -1);
    inform_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }

  void push_transfer(lua_State* L, const TransferInfo& t) {
    lua_createtable(L, 0, 12);
    auto str = [&](const char* k, const std::string& v) {
      lua_pushlstring(L, v.data(), v.size());
      lua_setfield(L, -2, k);
    };
    str("command_key", t.command_key);
    lua_pushboolean(L, t.fault_code == 0);
    lua_setfield(L, -2, "ok");
    lua_pushinteger(L, t.fault_code);
    lua_setfield(L, -2, "fault_code");
    str("fault_string", t.fault_string);
    str("start_time", t.start_time);
    str("complete_time", t.complete_time);
    lua_pushboolean(L, t.autonomous);
    lua_setfield(L, -2, "autonomous");
    if (t.autonomous) {
      lua_pushboolean(L, t.is_download);
      lua_setfield(L, -2, "is_download");
      str("file_type", t.file_type);
      str("transfer_url", t.transfer_url);
      str("target_file_name", t.target_file_name);
      lua_pushinteger(L, static_cast<lua_Integer>(t.file_size));
      lua_setfield(L, -2, "file_size");
    }
  }

  // Starts the next job; false when it could not start (reported).
  bool start(Job j) {
    job = std::move(j);
    lua_State* L = st->L();
    if (!st->thread_pool.empty()) {
      std::tie(co, co_ref) = st->thread_pool.back();
      st->thread_pool.pop_back();
    } else {
      co = lua_newthread(L);
      co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    int nargs = 0;
    switch (job.kind) {
      case Job::Kind::kTransfer:
        lua_rawgeti(co, LUA_REGISTRYINDEX, st->hook(kOnTransferComplete));
        push_dev(co);
        push_transfer(co, transfers[job.index]);
        nargs = 2;
        break;
      case Job::Kind::kEvent: {
        lua_rawgeti(co, LUA_REGISTRYINDEX, st->hook(kOnEvent));
        push_dev(co);
        const auto& code = ctx.session->inform().events[job.index].code;
        lua_pushlstring(co, code.data(), code.size());
        push_inform(co);
        nargs = 3;
        break;
      }
      case Job::Kind::kInform:
        lua_rawgeti(co, LUA_REGISTRYINDEX, st->hook(kOnInform));
        push_dev(co);
        push_inform(co);
        nargs = 2;
        break;
      case Job::Kind::kTask: {
        lua_rawgeti(co, LUA_REGISTRYINDEX, st->tasks_ref());
        lua_getfield(co, -1, job.function.c_str());
        lua_remove(co, -2);
        if (!lua_isfunction(co, -1)) {
          finish_failed("the policy has no function tasks." + job.function);
          return false;
        }
        push_dev(co);
        try {
          push_json(co, job.args.empty() ? "{}" : job.args);
        } catch (const std::exception& e) {
          finish_failed(std::string("task arguments are not JSON: ") + e.what());
          return false;
        }
        nargs = 2;
        break;
      }
    }
    st->begin_call();
    manager->hook_calls.fetch_add(1, std::memory_order_relaxed);
    return resume(nargs);
  }

  // Resumes the coroutine; true when it waits for the CPE again.
  bool resume(int nargs) {
    lua_State* L = st->L();
    int nres = 0;
    st->active_run = this;
    st->resumed(co);
    int rc = lua_resume(co, L, nargs, &nres);
    auto ran = st->paused();
    st->active_run = nullptr;
    manager->hook_time_ns.fetch_add(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(ran).count()),
        std::memory_order_relaxed);
    if (rc == LUA_YIELD) {
      lua_pop(co, nres);
      if (call && call->outstanding > 0) return true;
      finish_failed("the hook yielded without waiting for the CPE");
      return false;
    }
    if (rc == LUA_OK) {
      if (job.kind == Job::Kind::kTask && job.done) {
        std::string json;
        try {
          json = nres > 0 ? to_json(co, -nres) : "null";
        } catch (const std::exception& e) {
          finish_failed(std::string("tasks.") + job.function +
                        " returned a value that is not JSON: " + e.what());
          return false;
        }
        auto done = std::move(job.done);
        release();
        done(true, "{\"result\":" + json + "}");
        return false;
      }
      release();
      return false;
    }
    finish_failed(State::error_of(co, rc));
    return false;
  }

  void release() {
    if (call) call->run = nullptr;
    call.reset();
    if (!co) return;
    // A coroutine that returned can run the next hook (Lua 5.4 restarts a
    // finished coroutine with a new function): no new thread per hook.
    lua_settop(co, 0);
    if (lua_status(co) == LUA_OK && st->thread_pool.size() < 16)
      st->thread_pool.emplace_back(co, co_ref);
    else
      luaL_unref(st->L(), LUA_REGISTRYINDEX, co_ref);
    co_ref = LUA_NOREF;
    co = nullptr;
  }

  // The running job failed: log, fault, task result.
  void finish_failed(const std::string& msg) {
    manager->hook_errors.fetch_add(1, std::memory_order_relaxed);
    std::string hook = job_name();
    if (may_log_error())
      log::warn("policy error hook=" + hook + " generation=" + std::to_string(st->generation()) +
                " device=" + device_id() + ": " + msg);
    nlohmann::json detail = {{"hook", hook}, {"generation", st->generation()}};
    add_fault(hook + ": " + msg, util::json_text(detail));
    auto done = std::move(job.done);
    release();
    if (done) {
      nlohmann::json j = {{"error", msg}};
      done(false, util::json_text(j));
    }
  }

  Step advance() {
    if (ended) return Step::kIdle;
    if (!planned) plan();
    for (;;) {
      if (co) {
        if (call && call->outstanding > 0) return Step::kWaiting;
        if (resume(0)) return Step::kWaiting;
        continue;
      }
      if (next_job == jobs.size()) return Step::kIdle;
      Job j = std::move(jobs[next_job++]);
      if (start(std::move(j))) return Step::kWaiting;
    }
  }
};

namespace {

using Impl = Run::Impl;

Impl* self(lua_State* L) {
  auto* h = static_cast<DevHandle*>(luaL_checkudata(L, 1, kDevMeta));
  if (!h->run)
    luaL_error(L, "dev used after its session ended (do not keep dev in a global or upvalue)");
  if (h->run->st->active_run != h->run)
    luaL_error(L, "dev of device %s used from another session", h->run->device_id().c_str());
  return h->run;
}

void need_yield(lua_State* L, const char* what) {
  if (!lua_isyieldable(L))
    luaL_error(L,
               "dev:%s waits for the CPE and cannot be called here (inside a metamethod, "
               "iterator or sort function, or outside a hook)",
               what);
}

// A list of names: one string or a sequence of strings.
std::vector<std::string> names_arg(lua_State* L, int idx, const char* what) {
  std::vector<std::string> out;
  if (lua_type(L, idx) == LUA_TSTRING) {
    out.emplace_back(lua_tostring(L, idx));
    return out;
  }
  if (!lua_istable(L, idx)) luaL_error(L, "dev:%s expects a name or a list of names", what);
  lua_Integer n = luaL_len(L, idx);
  if (n < 0 || static_cast<size_t>(n) > kMaxNames)
    luaL_error(L, "dev:%s: at most %d names", what, static_cast<int>(kMaxNames));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    if (!s || lua_type(L, -1) != LUA_TSTRING || len == 0 || len > 256)
      luaL_error(L, "dev:%s: name %d is not a parameter name", what, static_cast<int>(i));
    out.emplace_back(s, len);
    lua_pop(L, 1);
  }
  return out;
}

// A string option; nullopt when absent (nil, or no options table at all).
std::optional<std::string> opt_string(lua_State* L, int idx, const char* key) {
  if (!lua_istable(L, idx)) return std::nullopt;
  lua_getfield(L, idx, key);
  std::optional<std::string> out;
  if (!lua_isnil(L, -1)) {
    if (!lua_isstring(L, -1)) luaL_error(L, "option '%s' must be a string", key);
    out = lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  return out;
}

std::string opt_field(lua_State* L, int idx, const char* key, const std::string& dflt = {}) {
  return opt_string(L, idx, key).value_or(dflt);
}

uint32_t opt_uint(lua_State* L, int idx, const char* key) {
  if (!lua_istable(L, idx)) return 0;
  lua_getfield(L, idx, key);
  lua_Integer v = 0;
  if (!lua_isnil(L, -1)) {
    int isnum = 0;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 0 || v > 0xffffffffLL)
      luaL_error(L, "option '%s' must be a whole number >= 0", key);
  }
  lua_pop(L, 1);
  return static_cast<uint32_t>(v);
}

void push_fault(lua_State* L, const Call& c) {
  const cwmp::ParamAnswers& a = c.answers;
  lua_createtable(L, 0, 4);
  if (a.fault) {
    lua_pushinteger(L, a.fault->code);
    lua_setfield(L, -2, "code");
    const std::string& s = a.fault->string.empty() ? a.fault->faultstring : a.fault->string;
    lua_pushlstring(L, s.data(), s.size());
    lua_setfield(L, -2, "string");
  } else if (!a.error.empty()) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, a.error.data(), a.error.size());
    lua_setfield(L, -2, "string");
  } else if (!a.invalid.empty()) {
    lua_pushinteger(L, 9005);
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "Invalid parameter name");
    lua_setfield(L, -2, "string");
  } else if (!a.set_faults.empty()) {
    lua_pushinteger(L, 9003);
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "Invalid arguments");
    lua_setfield(L, -2, "string");
  }
  if (!a.invalid.empty()) {
    lua_createtable(L, static_cast<int>(a.invalid.size()), 0);
    lua_Integer i = 1;
    for (const auto& n : a.invalid) {
      lua_pushlstring(L, n.data(), n.size());
      lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "invalid");
  }
  const auto& sf =
      !a.set_faults.empty() || !a.fault ? a.set_faults : a.fault->set_parameter_values_faults;
  if (!sf.empty()) {
    lua_createtable(L, static_cast<int>(sf.size()), 0);
    lua_Integer i = 1;
    for (const auto& f : sf) {
      lua_createtable(L, 0, 3);
      lua_pushlstring(L, f.name.data(), f.name.size());
      lua_setfield(L, -2, "name");
      lua_pushinteger(L, f.code);
      lua_setfield(L, -2, "code");
      lua_pushlstring(L, f.string.data(), f.string.size());
      lua_setfield(L, -2, "string");
      lua_rawseti(L, -2, i++);
    }
    lua_setfield(L, -2, "parameters");
  }
  if (c.kind == Call::Kind::kSet) {
    lua_pushinteger(L, a.sent);
    lua_setfield(L, -2, "sent");
  }
}

std::shared_ptr<Call> take_call(lua_State* L) {
  Impl* r = self(L);
  std::shared_ptr<Call> c = std::move(r->call);
  if (c) c->run = nullptr;
  return c ? c : std::make_shared<Call>();
}

// Suspends the hook until the CPE has answered every RPC of the call, then
// `k` turns the answers into Lua values.
int wait(lua_State* L, Impl* r, lua_KFunction k) {
  if (!r->call || r->call->outstanding == 0) return k(L, LUA_OK, 0);
  return lua_yieldk(L, 0, 0, k);
}

// ---- continuations ----

int k_get(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.values.empty() && c->answers.invalid.empty() &&
      (c->answers.fault || !c->answers.error.empty())) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  lua_createtable(L, 0, static_cast<int>(c->answers.values.size()));
  for (const auto& p : c->answers.values) {
    lua_pushlstring(L, p.name.data(), p.name.size());
    lua_pushlstring(L, p.value.data(), p.value.size());
    lua_rawset(L, -3);
  }
  if (!c->answers.invalid.empty() || c->answers.fault || !c->answers.error.empty()) {
    push_fault(L, *c);
    return 2;
  }
  return 1;
}

int k_set(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.set_faults.empty() && !c->answers.fault && c->answers.error.empty()) {
    lua_pushinteger(L, c->answers.sent);
    return 1;
  }
  lua_pushnil(L);
  push_fault(L, *c);
  return 2;
}

// Single RPCs: the answer, per kind of response.
int k_single(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.fault || !c->answers.error.empty()) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  const soap::Body& b = c->response;
  if (auto* names = std::get_if<soap::GetParameterNamesResponse>(&b)) {
    lua_createtable(L, static_cast<int>(names->parameters.size()), 0);
    lua_Integer i = 1;
    for (const auto& p : names->parameters) {
      lua_createtable(L, 0, 2);
      lua_pushlstring(L, p.name.data(), p.name.size());
      lua_setfield(L, -2, "name");
      lua_pushboolean(L, p.writable);
      lua_setfield(L, -2, "writable");
      lua_rawseti(L, -2, i++);
    }
    return 1;
  }
  if (auto* attrs = std::get_if<soap::GetParameterAttributesResponse>(&b)) {
    lua_createtable(L, 0, static_cast<int>(attrs->parameters.size()));
    for (const auto& p : attrs->parameters) {
      lua_createtable(L, 0, 2);
      lua_pushinteger(L, p.notification);
      lua_setfield(L, -2, "notification");
      lua_createtable(L, static_cast<int>(p.access_list.size()), 0);
      lua_Integer i = 1;
      for (const auto& a : p.access_list) {
        lua_pushlstring(L, a.data(), a.size());
        lua_rawseti(L, -2, i++);
      }
      lua_setfield(L, -2, "access");
      lua_setfield(L, -2, p.name.c_str());
    }
    return 1;
  }
  if (auto* add = std::get_if<soap::AddObjectResponse>(&b)) {
    lua_pushinteger(L, add->instance_number);
    return 1;
  }
  int status = -1;
  if (auto* d = std::get_if<soap::DownloadResponse>(&b)) status = d->status;
  if (auto* u = std::get_if<soap::UploadResponse>(&b)) status = u->status;
  if (c->returns_key) {
    lua_pushlstring(L, c->command_key.data(), c->command_key.size());
    lua_pushinteger(L, status < 0 ? 0 : status);
    return 2;
  }
  if (status >= 0) {
    lua_pushinteger(L, status);
    return 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

int k_attributes(lua_State* L, int, lua_KContext) {
  auto c = take_call(L);
  if (c->answers.fault || !c->answers.error.empty()) {
    lua_pushnil(L);
    push_fault(L, *c);
    return 2;
  }
  c->response = soap::GetParameterAttributesResponse{c->answers.attributes};
  // Reuse the single-RPC conversion.
  Impl* r = self(L);
  r->call = c;
  c->run = r;
  return k_single(L, LUA_OK, 0);
}

// ---- dev methods ----

// Every method body runs inside this: a C++ exception becomes a Lua error
// (never crossing a Lua frame).
template <typename F>
int guarded(lua_State* L, F&& f) {
  std::string err;
  try {
    return f();
  } catch (const std::exception& e) {
    err = e.what();
  }
  return luaL_error(L, "%s", err.c_str());
}

int dev_get(lua_State* L) {
  Impl* r = self(L);
  need_yield(L, "get");
  auto names = names_arg(L, 2, "get");
  return guarded(L, [&] {
    auto c = r->new_call(Call::Kind::kGet);
    // Names this model is known to refuse are answered as refused at once.
    const auto& invalid = r->st->invalid_names;
    if (!invalid.by_model.empty()) {
      const std::string& model = r->model_key();
      std::erase_if(names, [&](const std::string& n) {
        if (!invalid.has(model, n)) return false;
        c->answers.invalid.push_back(n);
        return true;
      });
    }
    for (auto& rpc : cwmp::get_values_batches(names, r->st->limits().batch_size))
      r->get_batch(c, std::move(rpc));
    return wait(L, r, k_get);
  });
}

// The text CWMP gets for a Lua value, and the type it is sent with.
void value_of(lua_State* L, int idx, const std::string& name, Impl* r, soap::ParameterValue* out) {
  idx = lua_absindex(L, idx);
  int vidx = idx;
  std::string type;
  if (lua_istable(L, idx)) {
    lua_rawgeti(L, idx, 1);
    lua_rawgeti(L, idx, 2);
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "dev:set: type of %s must be a string", name.c_str());
      type = lua_tostring(L, -1);
      if (type.rfind("xsd:", 0) == 0) type = type.substr(4);
    }
    lua_pop(L, 1);
    vidx = lua_absindex(L, -1);
  }
  const device::StoredParameter* k = r->known(name);
  switch (lua_type(L, vidx)) {
    case LUA_TBOOLEAN: {
      bool b = lua_toboolean(L, vidx);
      // Answer in the style the device uses ("1"/"0" or "true"/"false").
      bool numeric = k && (k->value == "0" || k->value == "1");
      out->value = numeric ? (b ? "1" : "0") : (b ? "true" : "false");
      if (type.empty()) type = "boolean";
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, vidx)) {
        out->value = std::to_string(lua_tointeger(L, vidx));
        if (type.empty() && !(k && !k->type.empty())) type = "int";
      } else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.14g", lua_tonumber(L, vidx));
        out->value = buf;
      }
      break;
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, vidx, &len);
      out->value.assign(s, len);
      break;
    }
    default:
      luaL_error(L, "dev:set: value of %s is a %s", name.c_str(), luaL_typename(L, vidx));
  }
  if (type.empty()) type = k && !k->type.empty() ? k->type : "string";
  out->type = type;
  out->name = name;
  if (vidx != idx) lua_pop(L, 1);
}

bool same_value(const device::StoredParameter& k, const soap::ParameterValue& v) {
  if (v.type == "boolean" || k.type == "boolean") return truthy(k.value) == truthy(v.value);
  return k.value == v.value;
}

int dev_set(lua_State* L) {
  Impl* r = self(L);
  need_yield(L, "set");
  luaL_checktype(L, 2, LUA_TTABLE);
  bool force = false;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "force");
    force = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  std::string key = opt_field(L, 3, "key");
  std::vector<soap::ParameterValue> params;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "dev:set: keys must be parameter names");
    std::string name = lua_tostring(L, -2);
    if (name.empty() || name.size() > 256 || name.back() == '.')
      luaL_error(L, "dev:set: '%s' is not a parameter name", name.c_str());
    soap::ParameterValue v;
    value_of(L, -1, name, r, &v);
    lua_pop(L, 1);
    const device::StoredParameter* k = r->known(name);
    if (!force && k && same_value(*k, v)) continue;
    params.push_back(std::move(v));
    if (params.size() > kMaxNames)
      luaL_error(L, "dev:set: at most %d values", static_cast<int>(kMaxNames));
  }
  std::sort(params.begin(), params.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  if (params.empty()) {
    lua_pushinteger(L, 0);
    return 1;
  }
  return guarded(L, [&] {
    auto c = r->new_call(Call::Kind::kSet);
    for (auto& batch : cwmp::set_values_batches(params, key, r->st->limits().batch_size))
      r->set_batch(c, std::move(batch));
    return wait(L, r, k_set);
  });
}

int send_single(lua_State* L, Impl* r, soap::Body body, const char* what) {
  need_yield(L, what);
  return guarded(L, [&] {
    auto c = r->new_call(Call::Kind::kSingle);
    r->single(c, std::move(body));
    return wait(L, r, k_single);
  });
}

int dev_names(lua_State* L) {
  Impl* r = self(L);
  soap::GetParameterNames g;
  g.path = luaL_checkstring(L, 2);
  g.next_level = lua_toboolean(L, 3);
  return send_single(L, r, std::move(g), "names");
}

int dev_attributes(lua_State* L) {
  Impl* r = self(L);
  need_yield(L, "attributes");
  auto names = names_arg(L, 2, "attributes");
  return guarded(L, [&] {
    auto c = r->new_call(Call::Kind::kAttributes);
    for (auto& rpc : cwmp::get_attributes_batches(names, r->st->limits().batch_size)) {
      r->send(c, rpc, [rpc](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
        cwmp::merge(c->answers, rpc, o);
      });
    }
    return wait(L, r, k_attributes);
  });
}

int dev_set_attributes(lua_State* L) {
  Impl* r = self(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  soap::SetParameterAttributes s;
  lua_Integer n = luaL_len(L, 2);
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, 2, i);
    if (!lua_istable(L, -1))
      luaL_error(L, "dev:set_attributes: entry %d is not a table", static_cast<int>(i));
    soap::SetParameterAttributesStruct a;
    lua_getfield(L, -1, "name");
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "dev:set_attributes: entry %d has no name", static_cast<int>(i));
    a.name = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "notification");
    if (!lua_isnil(L, -1)) {
      lua_Integer v = lua_tointeger(L, -1);
      if (v < 0 || v > 6) luaL_error(L, "dev:set_attributes: notification must be 0..6");
      a.notification_change = true;
      a.notification = static_cast<int>(v);
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "access");
    if (lua_istable(L, -1)) {
      a.access_list_change = true;
      a.access_list = names_arg(L, lua_gettop(L), "set_attributes");
    }
    lua_pop(L, 2);
    s.parameters.push_back(std::move(a));
  }
  return send_single(L, r, std::move(s), "set_attributes");
}

int dev_add(lua_State* L) {
  Impl* r = self(L);
  soap::AddObject a;
  a.object_name = luaL_checkstring(L, 2);
  a.parameter_key = luaL_optstring(L, 3, "");
  if (a.object_name.empty() || a.object_name.back() != '.')
    return luaL_error(L, "dev:add: '%s' is not an object path (it must end with '.')",
                      a.object_name.c_str());
  return send_single(L, r, std::move(a), "add");
}

int dev_delete(lua_State* L) {
  Impl* r = self(L);
  soap::DeleteObject d;
  d.object_name = luaL_checkstring(L, 2);
  d.parameter_key = luaL_optstring(L, 3, "");
  if (d.object_name.empty() || d.object_name.back() != '.')
    return luaL_error(L, "dev:delete: '%s' is not an object instance path (it must end with '.')",
                      d.object_name.c_str());
  return send_single(L, r, std::move(d), "delete");
}

int dev_reboot(lua_State* L) {
  Impl* r = self(L);
  return send_single(L, r, soap::Reboot{luaL_optstring(L, 2, "")}, "reboot");
}

int dev_factory_reset(lua_State* L) {
  Impl* r = self(L);
  return send_single(L, r, soap::FactoryReset{}, "factory_reset");
}

int dev_schedule_inform(lua_State* L) {
  Impl* r = self(L);
  lua_Integer delay = luaL_checkinteger(L, 2);
  if (delay < 1 || delay > 0xffffffffLL)
    return luaL_error(L, "dev:schedule_inform: delay must be >= 1 second");
  soap::ScheduleInform s;
  s.delay_seconds = static_cast<uint32_t>(delay);
  s.command_key = luaL_optstring(L, 3, "");
  return send_single(L, r, std::move(s), "schedule_inform");
}

// The fields Download and Upload share, from the options table at 2.
template <typename Transfer>
void transfer_fields(lua_State* L, const char* what, Transfer& t) {
  luaL_checktype(L, 2, LUA_TTABLE);
  t.url = opt_field(L, 2, "url");
  t.file_type = opt_field(L, 2, "file_type");
  if (t.url.empty() || t.file_type.empty()) luaL_error(L, "dev:%s needs url and file_type", what);
  t.command_key = opt_field(L, 2, "command_key");
  t.username = opt_field(L, 2, "username");
  t.password = opt_field(L, 2, "password");
  t.delay_seconds = opt_uint(L, 2, "delay");
}

int dev_download(lua_State* L) {
  Impl* r = self(L);
  soap::Download d;
  transfer_fields(L, "download", d);
  d.target_file_name = opt_field(L, 2, "target_file_name");
  d.file_size = opt_uint(L, 2, "file_size");
  return send_single(L, r, std::move(d), "download");
}

int dev_upload(lua_State* L) {
  Impl* r = self(L);
  soap::Upload u;
  transfer_fields(L, "upload", u);
  return send_single(L, r, std::move(u), "upload");
}

// Sends the Download of a file just published (`d` has every argument but
// the URL and the size).
int push_file(lua_State* L, Impl* r, const ServedFile& f, soap::Download d) {
  d.file_size = static_cast<uint32_t>(f.size);
  d.url = r->files_base() + f.path;
  auto c = r->new_call(Call::Kind::kSingle);
  c->returns_key = true;
  c->command_key = d.command_key;
  r->single(c, std::move(d));
  return wait(L, r, k_single);
}

// What a push needs before it publishes anything: a coroutine that may
// wait, the service, and a URL for the CPE to fetch from.
void need_files(lua_State* L, Impl* r, bool service, const char* what) {
  need_yield(L, what);
  if (!service) luaL_error(L, "dev:%s: no file server in this process", what);
  if (r->files_base().empty())
    luaL_error(L, "dev:%s: no file server URL known ([files] url)", what);
}

int dev_alter(lua_State* L) {
  Impl* r = self(L);
  size_t len = 0;
  const char* script = luaL_checklstring(L, 2, &len);
  if (len == 0) return luaL_error(L, "dev:alter: the script is empty");
  if (len > kMaxScriptBytes) return luaL_error(L, "dev:alter: the script is larger than 1 MiB");
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  std::optional<std::string> name = opt_string(L, 3, "name");
  std::optional<std::string> command_key = opt_string(L, 3, "command_key");
  soap::Download d;
  d.file_type = "3 Vendor Configuration File";
  d.delay_seconds = opt_uint(L, 3, "delay");
  need_files(L, r, r->files && r->files->publish_alter, "alter");
  return guarded(L, [&] {
    ServedFile f = r->files->publish_alter(r->device_id(), std::string(script, len), name);
    d.command_key = command_key.value_or("alter-" + f.sha256.substr(0, 8));
    d.target_file_name = f.name;
    return push_file(L, r, f, std::move(d));
  });
}

int dev_upgrade(lua_State* L) {
  Impl* r = self(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "links");
  if (!lua_istable(L, -1) || luaL_len(L, -1) == 0)
    return luaL_error(L, "dev:upgrade needs links = { url or file name, ... }");
  auto links = names_arg(L, lua_gettop(L), "upgrade");
  lua_pop(L, 1);
  std::string version = opt_field(L, 2, "version");
  std::vector<std::string> urls;
  bool client = false;
  for (const auto& l : links) {
    std::string url = l;
    if (l.rfind("http://", 0) != 0 && l.rfind("https://", 0) != 0) {
      std::string path = r->files && r->files->path_of ? r->files->path_of(l) : std::string();
      if (path.empty())
        return luaL_error(L, "dev:upgrade: no file '%s' on the file server ([files] dir)",
                          l.c_str());
      url = r->files_base() + path;
    }
    if (l.find("tr069-client") != std::string::npos) client = true;
    urls.push_back(std::move(url));
  }
  if (!client)
    log::warn("policy device=" + r->device_id() +
              ": dev:upgrade without a tr069-client package among the links: the device will "
              "come back without CWMP");
  std::optional<std::string> command_key = opt_string(L, 2, "command_key");
  soap::Download d;
  d.file_type = "1 Firmware Upgrade Image";
  d.delay_seconds = opt_uint(L, 2, "delay");
  need_files(L, r, r->files && r->files->publish_manifest, "upgrade");
  return guarded(L, [&] {
    ServedFile f = r->files->publish_manifest(urls);
    d.command_key =
        command_key.value_or("upgrade-" + (version.empty() ? f.sha256.substr(0, 8) : version));
    return push_file(L, r, f, std::move(d));
  });
}

int dev_file_url(lua_State* L) {
  Impl* r = self(L);
  std::string name = luaL_checkstring(L, 2);
  std::string path;
  if (r->files && r->files->path_of) {
    std::string err;
    try {
      path = r->files->path_of(name);
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) return luaL_error(L, "dev:file_url: %s", err.c_str());
  }
  std::string base = r->files_base();
  if (path.empty() || base.empty()) {
    lua_pushnil(L);
    return 1;
  }
  std::string url = base + path;
  lua_pushlstring(L, url.data(), url.size());
  return 1;
}

int dev_param(lua_State* L) {
  Impl* r = self(L);
  const device::StoredParameter* p = r->known(luaL_checkstring(L, 2));
  if (!p) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, p->value.data(), p->value.size());
  lua_pushlstring(L, p->type.data(), p->type.size());
  lua_pushinteger(L, epoch(p->read_at));
  return 3;
}

int dev_params(lua_State* L) {
  Impl* r = self(L);
  std::string prefix = luaL_optstring(L, 2, "");
  lua_newtable(L);
  if (r->ctx.device) {
    const auto& stored = r->ctx.device->parameters;
    for (auto it = stored.lower_bound(prefix); it != stored.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      lua_pushlstring(L, it->second.value.data(), it->second.value.size());
      lua_setfield(L, -2, it->first.c_str());
    }
  }
  for (const auto& p : r->ctx.session->inform().parameters) {
    if (p.name.compare(0, prefix.size(), prefix) != 0) continue;
    lua_pushlstring(L, p.value.data(), p.value.size());
    lua_setfield(L, -2, p.name.c_str());
  }
  for (const auto& [name, p] : r->overlay) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    lua_pushlstring(L, p.value.data(), p.value.size());
    lua_setfield(L, -2, name.c_str());
  }
  return 1;
}

int dev_summary(lua_State* L) {
  Impl* r = self(L);
  static const std::string kPrefix = "Summary.";
  if (lua_isnoneornil(L, 2)) {
    // The stored fields, then this session's (an Inform never carries any).
    lua_createtable(L, 0, 8);
    auto put = [&](const std::string& name, const std::string& value) {
      lua_pushlstring(L, name.data() + kPrefix.size(), name.size() - kPrefix.size());
      lua_pushlstring(L, value.data(), value.size());
      lua_rawset(L, -3);
    };
    if (r->ctx.device) {
      const auto& stored = r->ctx.device->parameters;
      for (auto it = stored.lower_bound(kPrefix);
           it != stored.end() && it->first.compare(0, kPrefix.size(), kPrefix) == 0; ++it)
        put(it->first, it->second.value);
    }
    for (const auto& [name, p] : r->overlay)
      if (name.compare(0, kPrefix.size(), kPrefix) == 0) put(name, p.value);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  auto now = std::chrono::system_clock::now();
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) luaL_error(L, "dev:summary: keys must be strings");
    std::string key = lua_tostring(L, -2);
    if (key.empty() || key.size() > 64 || key.find('.') != std::string::npos)
      luaL_error(L, "dev:summary: '%s' is not a summary key", key.c_str());
    size_t len = 0;
    const char* v = luaL_tolstring(L, -1, &len);
    soap::ParameterValue p{kPrefix + key, std::string(v, std::min<size_t>(len, 4096)), "string"};
    lua_pop(L, 2);
    const device::StoredParameter* k = r->known(p.name);
    if (k && k->value == p.value) continue;
    r->learn(p);
    r->ctx.result->parameters.emplace_back(std::move(p), now);
  }
  return 0;
}

std::string tag_arg(lua_State* L) {
  size_t len = 0;
  const char* t = luaL_checklstring(L, 2, &len);
  if (!valid_tag({t, len}))
    luaL_error(L, "'%s' is not a tag name (1..64 of A-Z a-z 0-9 _ . : -)", t);
  return {t, len};
}

void erase_all(std::vector<std::string>& v, const std::string& s) {
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
}

int dev_tag(lua_State* L) {
  Impl* r = self(L);
  std::string t = tag_arg(L);
  auto& res = *r->ctx.result;
  erase_all(res.tags_removed, t);
  if (!r->has_tag(t)) res.tags_added.push_back(t);
  return 0;
}

int dev_untag(lua_State* L) {
  Impl* r = self(L);
  std::string t = tag_arg(L);
  auto& res = *r->ctx.result;
  erase_all(res.tags_added, t);
  if (r->has_tag(t) || (r->ctx.device && r->ctx.device->tags.count(t)))
    res.tags_removed.push_back(t);
  return 0;
}

int dev_has_tag(lua_State* L) {
  Impl* r = self(L);
  lua_pushboolean(L, r->has_tag(tag_arg(L)));
  return 1;
}

int dev_tags(lua_State* L) {
  Impl* r = self(L);
  auto t = r->tags();
  lua_createtable(L, static_cast<int>(t.size()), 0);
  lua_Integer i = 1;
  for (const auto& s : t) {
    lua_pushlstring(L, s.data(), s.size());
    lua_rawseti(L, -2, i++);
  }
  return 1;
}

int dev_log_at(lua_State* L, log::Level level) {
  Impl* r = self(L);
  if (!log::enabled(level)) return 0;
  std::string line =
      "policy device=" + r->device_id() + " at " + caller_position(L) + ": " + joined_args(L, 2);
  switch (level) {
    case log::Level::kError:
      log::error(line);
      break;
    case log::Level::kWarn:
      log::warn(line);
      break;
    default:
      log::info(line);
  }
  return 0;
}

int dev_log(lua_State* L) {
  return dev_log_at(L, log::Level::kInfo);
}
int dev_warn(lua_State* L) {
  return dev_log_at(L, log::Level::kWarn);
}
int dev_error(lua_State* L) {
  return dev_log_at(L, log::Level::kError);
}

int dev_fault(lua_State* L) {
  Impl* r = self(L);
  std::string msg = caller_position(L) + ": " + joined_args(L, 2);
  nlohmann::json detail = {{"generation", r->st->generation()}};
  r->add_fault(msg, util::json_text(detail));
  return 0;
}

void push_time(lua_State* L, device::Time t) {
  if (t == device::Time{})
    lua_pushnil(L);
  else
    lua_pushinteger(L, epoch(t));
}

// dev.<field>, or a method.
int dev_index(lua_State* L) {
  std::string_view key;
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t len = 0;
    const char* k = lua_tolstring(L, 2, &len);
    key = {k, len};
  }
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  Impl* r = self(L);
  const soap::Inform& in = r->ctx.session->inform();
  auto str = [&](const std::string& s) {
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  };
  if (key == "id") return str(r->device_id());
  if (key == "oui") return str(in.device_id.oui);
  if (key == "product_class") return str(in.device_id.product_class);
  if (key == "serial") return str(in.device_id.serial_number);
  if (key == "manufacturer") return str(in.device_id.manufacturer);
  if (key == "root") return str(r->root());
  if (key == "ip") return str(util::address_of(r->ctx.peer));
  const device::Device* d = r->ctx.device.get();
  if (key == "is_new") {
    lua_pushboolean(L, !d || d->first_seen == device::Time{});
    return 1;
  }
  if (key == "first_seen") {
    push_time(L, d ? d->first_seen : device::Time{});
    return 1;
  }
  if (key == "last_inform") {
    push_time(L, d ? d->last_inform : device::Time{});
    return 1;
  }
  if (key == "generation") {
    lua_pushinteger(L, static_cast<lua_Integer>(r->st->generation()));
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

int dev_newindex(lua_State* L) {
  return luaL_error(L, "dev is read-only (use dev:summary{...} or dev:set{...})");
}

int dev_tostring(lua_State* L) {
  auto* h = static_cast<DevHandle*>(luaL_checkudata(L, 1, kDevMeta));
  std::string s = h->run ? "dev(" + h->run->device_id() + ")" : "dev(stale)";
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

const luaL_Reg kDevMethods[] = {
    {"get", dev_get},
    {"set", dev_set},
    {"names", dev_names},
    {"attributes", dev_attributes},
    {"set_attributes", dev_set_attributes},
    {"add", dev_add},
    {"delete", dev_delete},
    {"reboot", dev_reboot},
    {"factory_reset", dev_factory_reset},
    {"schedule_inform", dev_schedule_inform},
    {"download", dev_download},
    {"upload", dev_upload},
    {"alter", dev_alter},
    {"upgrade", dev_upgrade},
    {"file_url", dev_file_url},
    {"param", dev_param},
    {"params", dev_params},
    {"summary", dev_summary},
    {"tag", dev_tag},
    {"untag", dev_untag},
    {"has_tag", dev_has_tag},
    {"tags", dev_tags},
    {"log", dev_log},
    {"warn", dev_warn},
    {"error", dev_error},
    {"fault", dev_fault},
    {nullptr, nullptr},
};

const std::vector<soap::ParameterValue>& inform_params(lua_State* L) {
  auto* h = static_cast<ParamsHandle*>(luaL_checkudata(L, 1, kParamsMeta));
  if (!h->run) luaL_error(L, "inform used after its session ended");
  return h->run->ctx.session->inform().parameters;
}

int params_index(lua_State* L) {
  const auto& params = inform_params(L);
  size_t len = 0;
  const char* key = lua_tolstring(L, 2, &len);
  if (key) {
    std::string_view k(key, len);
    for (const auto& p : params) {
      if (p.name == k) {
        lua_pushlstring(L, p.value.data(), p.value.size());
        return 1;
      }
    }
  }
  lua_pushnil(L);
  return 1;
}

// The iterator of pairs(inform.params): the control value is the index.
int params_next(lua_State* L) {
  const auto& params = inform_params(L);
  lua_Integer i = lua_isnil(L, 2) ? 0 : lua_tointeger(L, lua_upvalueindex(1));
  if (i < 0 || static_cast<size_t>(i) >= params.size()) return 0;
  const auto& p = params[static_cast<size_t>(i)];
  lua_pushinteger(L, i + 1);
  lua_replace(L, lua_upvalueindex(1));
  lua_pushlstring(L, p.name.data(), p.name.size());
  lua_pushlstring(L, p.value.data(), p.value.size());
  return 2;
}

int params_pairs(lua_State* L) {
  inform_params(L);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, params_next, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int params_newindex(lua_State* L) {
  return luaL_error(L, "inform.params is read-only");
}

int params_len(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(inform_params(L).size()));
  return 1;
}

const luaL_Reg kParamsMethods[] = {
    {"__index", params_index},       {"__pairs", params_pairs}, {"__len", params_len},
    {"__newindex", params_newindex}, {nullptr, nullptr},
};

const luaL_Reg kDevMetamethods[] = {
    {"__newindex", dev_newindex},
    {"__tostring", dev_tostring},
    {nullptr, nullptr},
};

// The metatables of `dev` and `inform.params`, made once per state.
void ensure_dev_metatable(lua_State* L) {
  if (!luaL_newmetatable(L, kDevMeta)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, kDevMetamethods, 0);
  luaL_newlib(L, kDevMethods);
  lua_pushcclosure(L, dev_index, 1);  // methods first, then fields
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "dev");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);

  luaL_newmetatable(L, kParamsMeta);
  luaL_setfuncs(L, kParamsMethods, 0);
  lua_pushliteral(L, "inform.params");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

}  // namespace

// ---- Run ----

Run::Run(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Run::~Run() = default;

void Run::transfer_complete(TransferInfo t) {
  impl_->transfers.push_back(std::move(t));
}

void Run::add_task(std::string function, std::string args_json, TaskDone done) {
  Impl::Job j;
  j.kind = Impl::Job::Kind::kTask;
  j.function = std::move(function);
  j.args = std::move(args_json);
  j.done = std::move(done);
  impl_->jobs.push_back(std::move(j));
}

Run::Step Run::advance() {
  return impl_->advance();
}
void Run::end() {
  impl_->end();
}
uint64_t Run::generation() const {
  return impl_->st->generation();
}

// ---- Engine ----

Engine::Engine(PolicyManager& manager, FileServices files, int worker)
    : manager_(manager), files_(std::move(files)), worker_(worker) {}

Engine::~Engine() = default;

std::unique_ptr<Run> Engine::start(RunContext ctx) {
  uint64_t gen = manager_.generation();
  if (gen == 0) return nullptr;
  if ((!current_ || current_->generation() != gen) && gen != failed_generation_) {
    auto pol = manager_.current();
    std::string error;
    auto st = pol ? State::load(pol->files, pol->generation, manager_.limits(), &error) : nullptr;
    if (st) {
      ensure_dev_metatable(st->L());
      current_ = st;
      std::erase_if(states_, [](const auto& w) { return w.expired(); });
      states_.push_back(st);
    } else {
      failed_generation_ = gen;
      log::error("policy generation " + std::to_string(gen) + " does not load on worker " +
                 std::to_string(worker_) + ": " + error + "; keeping generation " +
                 std::to_string(current_ ? current_->generation() : 0));
    }
  }
  if (worker_ >= 0 && worker_ < PolicyManager::kMaxWorkers)
    manager_.lua_bytes[static_cast<size_t>(worker_)].store(memory(), std::memory_order_relaxed);
  if (!current_ || (!current_->has_hooks() && !current_->has_tasks())) return nullptr;
  auto impl = std::make_unique<Run::Impl>();
  impl->st = current_;
  impl->manager = &manager_;
  impl->files = &files_;
  impl->ctx = std::move(ctx);
  return std::unique_ptr<Run>(new Run(std::move(impl)));
}

void Engine::idle_gc() {
  if (current_) lua_gc(current_->L(), LUA_GCSTEP, 0);
}

size_t Engine::memory() const {
  size_t total = 0;
  for (const auto& w : states_)
    if (auto s = w.lock()) total += s->memory();
  return total;
}

uint64_t Engine::generation() const {
  return current_ ? current_->generation() : 0;
}

}  // namespace luacs::lua
