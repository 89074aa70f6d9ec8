// Internal to lua/: the policy side of one session (Run::Impl). Its hooks
// and tasks run one after the other, each as a coroutine of the State; a
// call of the dev API that asks the CPE something queues RPCs on the
// cwmp::Session and yields, and the coroutine is resumed once every answer
// is in.
//
// A Run belongs to the worker thread of its session, like the State it runs
// on; the Lua objects of a session (`dev`, `inform.params`) are handles that
// go stale when it ends.
#pragma once

#include <lua.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/cwmp/param_batches.h"
#include "core/cwmp/session.h"
#include "lua/device_view.h"
#include "lua/policy.h"
#include "lua/state.h"

namespace luacs::lua {

// The userdata behind `dev` and `inform.params`: borrowed from the run,
// null once the session is over.
struct Handle {
  Run::Impl* run;
};

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

struct Run::Impl {
  Impl(std::shared_ptr<State> state, PolicyManager& manager, const FileServices& files,
       RunContext context);
  ~Impl();

  std::shared_ptr<State> st;
  PolicyManager* manager;
  const FileServices* files;
  RunContext ctx;
  DeviceView view;

  struct Job {
    enum class Kind { kTransfer, kEvent, kInform, kTask } kind = Kind::kInform;
    size_t index = 0;  // transfer or event
    // A hook call: -1 the global hook, else the index of a job in
    // State::jobs(hook). The calls of one hook invocation (the global hook,
    // then each job) share one budget: `first` starts it, and once it is
    // exceeded the rest are skipped.
    int job = -1;
    bool first = true;
    std::string function, args;
    TaskDone done;
  };
  std::vector<TransferInfo> transfers;
  std::vector<Job> jobs;

  // The Lua objects of the session, made when a hook first needs them.
  int dev_ref = LUA_NOREF;
  int inform_ref = LUA_NOREF;
  Handle* dev = nullptr;
  Handle* params = nullptr;

  // What the running hook waits for.
  std::shared_ptr<Call> call;

  const std::string& device_id() const { return ctx.session->device_id(); }
  // The file server's base URL for this session's CPE ("" when none).
  std::string files_base() const;
  // A fault with source "policy" on the device.
  void add_fault(const std::string& message, const std::string& detail);

  // The call the running hook makes (replacing any before it).
  std::shared_ptr<Call> new_call(Call::Kind kind);
  // Queues `body` on the session as part of `c`; `on` gets the outcome
  // while the run lives.
  using OnOutcome = std::function<void(const std::shared_ptr<Call>&, const cwmp::RpcOutcome&)>;
  void send(const std::shared_ptr<Call>& c, soap::Body body, OnOutcome on);
  // One RPC whose response is the call's answer.
  void single(const std::shared_ptr<Call>& c, soap::Body body);

  Step advance();
  void end();

 private:
  void plan();
  void plan_hook(Hook h, Job::Kind kind, size_t index);
  Hook hook_of() const;
  std::string job_name() const;
  bool start(Job j);
  bool resume(int nargs);
  void release();
  void finish_failed(const std::string& msg);

  size_t next_job_ = 0;
  bool planned_ = false;
  Job job_;  // the running one
  lua_State* co_ = nullptr;
  int co_ref_ = LUA_NOREF;
  size_t memory_at_start_ = 0;  // of the state, when the running job started
  bool ended_ = false;
};

}  // namespace luacs::lua
