// The coroutine runs of a session: which hooks and tasks run in what order,
// starting, resuming and ending their coroutines, and the bookkeeping of
// the RPCs a call waits for. On the worker thread of the session.
#include "lua/run.h"

#include <chrono>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/util/json.h"
#include "core/util/log.h"
#include "lua/binding.h"
#include "lua/json.h"

namespace luacs::lua {
namespace {

// A coroutine whose call grew the state by more than this is not reused
// (past State::kCollectAfter the next call starts with a full collection).
constexpr size_t kPoolGrowth = size_t{256} << 10;

// Rate limit of policy error lines, per worker thread.
bool may_log_error() {
  thread_local int64_t window = 0;
  thread_local int count = 0;
  thread_local uint64_t suppressed = 0;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
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

Run::Impl::Impl(std::shared_ptr<State> state, PolicyManager& m, const FileServices& f,
                RunContext context)
    : st(std::move(state)), manager(&m), files(&f), ctx(std::move(context)), view(ctx) {}

Run::Impl::~Impl() {
  end();
}

std::string Run::Impl::files_base() const {
  return files && files->base_url ? files->base_url(ctx.host) : std::string();
}

void Run::Impl::add_fault(const std::string& message, const std::string& detail) {
  ctx.result->faults.push_back({device_id(), "policy", 0, message, detail});
}

void Run::Impl::end() {
  if (ended_) return;
  ended_ = true;
  if (call) call->run = nullptr;
  call.reset();
  if (dev) dev->run = nullptr;
  lua_State* L = st->L();
  luaL_unref(L, LUA_REGISTRYINDEX, co_ref_);
  luaL_unref(L, LUA_REGISTRYINDEX, dev_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, inform_ref);
  co_ = nullptr;
  co_ref_ = dev_ref = inform_ref = LUA_NOREF;
  if (params) params->run = nullptr;
  // A collection step between sessions, not after every one.
  if (++st->runs_since_gc >= 64) {
    st->runs_since_gc = 0;
    lua_gc(L, LUA_GCSTEP, 0);
  }
}

// ---- RPCs ----

std::shared_ptr<Call> Run::Impl::new_call(Call::Kind kind) {
  call = std::make_shared<Call>();
  call->run = this;
  call->kind = kind;
  return call;
}

void Run::Impl::send(const std::shared_ptr<Call>& c, soap::Body body, OnOutcome on) {
  ++c->outstanding;
  ctx.session->queue(std::move(body), [c, on = std::move(on)](const cwmp::RpcOutcome& o) {
    --c->outstanding;
    if (c->run) on(c, o);
  });
}

void Run::Impl::single(const std::shared_ptr<Call>& c, soap::Body body) {
  send(c, std::move(body), [](const std::shared_ptr<Call>& c, const cwmp::RpcOutcome& o) {
    if (o.ok())
      c->response = o.response;
    else
      cwmp::note_failure(c->answers, o);
  });
}

// ---- running hooks and tasks ----

// One invocation of hook `h`: the global hook, then each job's function.
void Run::Impl::plan_hook(Hook h, Job::Kind kind, size_t index) {
  bool first = true;
  auto add = [&](int job) {
    Job j;
    j.kind = kind;
    j.index = index;
    j.job = job;
    j.first = first;
    first = false;
    jobs.push_back(std::move(j));
  };
  if (st->hook(h) != LUA_NOREF) add(-1);
  for (size_t k = 0; k < st->jobs(h).size(); ++k) add(static_cast<int>(k));
}

void Run::Impl::plan() {
  planned_ = true;
  for (size_t i = 0; i < transfers.size(); ++i)
    plan_hook(kOnTransferComplete, Job::Kind::kTransfer, i);
  for (size_t i = 0; i < ctx.session->inform().events.size(); ++i)
    plan_hook(kOnEvent, Job::Kind::kEvent, i);
  plan_hook(kOnInform, Job::Kind::kInform, 0);
}

Hook Run::Impl::hook_of() const {
  switch (job_.kind) {
    case Job::Kind::kTransfer:
      return kOnTransferComplete;
    case Job::Kind::kEvent:
      return kOnEvent;
    default:
      return kOnInform;
  }
}

std::string Run::Impl::job_name() const {
  if (job_.kind == Job::Kind::kTask) return "tasks." + job_.function;
  std::string hook = kHookNames[hook_of()];
  if (job_.job < 0) return hook;
  return "job " + st->jobs(hook_of())[static_cast<size_t>(job_.job)].name + " " + hook;
}

// Starts the next job; false when it could not start (reported).
bool Run::Impl::start(Job j) {
  job_ = std::move(j);
  lua_State* L = st->L();
  memory_at_start_ = st->memory();
  if (!st->thread_pool.empty()) {
    std::tie(co_, co_ref_) = st->thread_pool.back();
    st->thread_pool.pop_back();
  } else {
    co_ = lua_newthread(L);
    co_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  int nargs = 0;
  int fn = job_.kind == Job::Kind::kTask ? LUA_NOREF
           : job_.job < 0                ? st->hook(hook_of())
                                         : st->jobs(hook_of())[static_cast<size_t>(job_.job)].ref;
  switch (job_.kind) {
    case Job::Kind::kTransfer:
      lua_rawgeti(co_, LUA_REGISTRYINDEX, fn);
      push_dev(co_, *this);
      push_transfer(co_, transfers[job_.index]);
      nargs = 2;
      break;
    case Job::Kind::kEvent: {
      lua_rawgeti(co_, LUA_REGISTRYINDEX, fn);
      push_dev(co_, *this);
      const auto& code = ctx.session->inform().events[job_.index].code;
      lua_pushlstring(co_, code.data(), code.size());
      push_inform(co_, *this);
      nargs = 3;
      break;
    }
    case Job::Kind::kInform:
      lua_rawgeti(co_, LUA_REGISTRYINDEX, fn);
      push_dev(co_, *this);
      push_inform(co_, *this);
      nargs = 2;
      break;
    case Job::Kind::kTask: {
      lua_rawgeti(co_, LUA_REGISTRYINDEX, st->tasks_ref());
      lua_getfield(co_, -1, job_.function.c_str());
      lua_remove(co_, -2);
      if (!lua_isfunction(co_, -1)) {
        finish_failed("the policy has no function tasks." + job_.function);
        return false;
      }
      push_dev(co_, *this);
      try {
        push_json(co_, job_.args.empty() ? "{}" : job_.args);
      } catch (const std::exception& e) {
        finish_failed(std::string("task arguments are not JSON: ") + e.what());
        return false;
      }
      nargs = 2;
      break;
    }
  }
  if (job_.first) st->begin_call();
  manager->hook_calls.fetch_add(1, std::memory_order_relaxed);
  return resume(nargs);
}

// Resumes the coroutine; true when it waits for the CPE again.
bool Run::Impl::resume(int nargs) {
  lua_State* L = st->L();
  int nres = 0;
  st->active_run = this;
  st->resumed(co_);
  int rc = lua_resume(co_, L, nargs, &nres);
  auto ran = st->paused();
  st->active_run = nullptr;
  manager->hook_time_ns.fetch_add(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(ran).count()),
      std::memory_order_relaxed);
  if (rc == LUA_YIELD) {
    lua_pop(co_, nres);
    if (call && call->outstanding > 0) return true;
    finish_failed("the hook yielded without waiting for the CPE");
    return false;
  }
  if (rc == LUA_OK) {
    if (job_.kind == Job::Kind::kTask && job_.done) {
      std::string json;
      try {
        json = nres > 0 ? to_json(co_, -nres) : "null";
      } catch (const std::exception& e) {
        finish_failed(std::string("tasks.") + job_.function +
                      " returned a value that is not JSON: " + e.what());
        return false;
      }
      auto done = std::move(job_.done);
      release();
      done(true, "{\"result\":" + json + "}");
      return false;
    }
    release();
    return false;
  }
  finish_failed(State::error_of(co_, rc));
  return false;
}

void Run::Impl::release() {
  if (call) call->run = nullptr;
  call.reset();
  if (!co_) return;
  // A coroutine that returned can run the next hook (Lua 5.4 restarts a
  // finished coroutine with a new function): no new thread per hook.
  lua_settop(co_, 0);
  // Not one whose call grew the state: that may be its own stack (deep
  // recursion, table.unpack of a million values), which the generational
  // collector never shrinks in a live thread. Dropped, it is garbage; a
  // large growth is collected before the next call.
  const size_t grown = st->memory() > memory_at_start_ ? st->memory() - memory_at_start_ : 0;
  if (grown > State::kCollectAfter) st->collect_before_next = true;
  if (lua_status(co_) == LUA_OK && st->thread_pool.size() < 16 && grown <= kPoolGrowth)
    st->thread_pool.emplace_back(co_, co_ref_);
  else
    luaL_unref(st->L(), LUA_REGISTRYINDEX, co_ref_);
  co_ref_ = LUA_NOREF;
  co_ = nullptr;
}

// The running job failed: log, fault, task result.
void Run::Impl::finish_failed(const std::string& msg) {
  manager->hook_errors.fetch_add(1, std::memory_order_relaxed);
  std::string hook = job_name();
  if (may_log_error())
    log::warn("policy error hook=" + hook + " generation=" + std::to_string(st->generation()) +
              " device=" + device_id() + ": " + msg);
  nlohmann::json detail = {{"hook", hook}, {"generation", st->generation()}};
  if (job_.kind != Job::Kind::kTask && job_.job >= 0) {
    detail["hook"] = kHookNames[hook_of()];
    detail["job"] = st->jobs(hook_of())[static_cast<size_t>(job_.job)].name;
  }
  add_fault(hook + ": " + msg, util::json_text(detail));
  auto done = std::move(job_.done);
  release();
  if (done) {
    nlohmann::json j = {{"error", msg}};
    done(false, util::json_text(j));
  }
}

Run::Step Run::Impl::advance() {
  if (ended_) return Step::kIdle;
  if (!planned_) plan();
  for (;;) {
    if (co_) {
      if (call && call->outstanding > 0) return Step::kWaiting;
      if (resume(0)) return Step::kWaiting;
      continue;
    }
    if (next_job_ == jobs.size()) return Step::kIdle;
    Job j = std::move(jobs[next_job_++]);
    // A budget exceeded by the global hook or a job stops the whole hook.
    if (!j.first && st->tripped()) continue;
    if (start(std::move(j))) return Step::kWaiting;
  }
}

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

}  // namespace luacs::lua
