// Internal to lua/: one Lua state loaded with one policy generation, its
// sandbox, budget and memory cap. A State belongs to the one worker thread
// whose Engine loaded it (check() builds a throwaway one on its caller's
// thread); it is never shared.
#pragma once

#include <lua.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lua/policy.h"

namespace luacs::lua {

enum Hook { kOnTransferComplete, kOnEvent, kOnInform, kHookCount };
extern const std::array<const char*, kHookCount> kHookNames;
// Hooks that are not part of a session, called with a read-only `dev`
// (device_snapshot.h): connection_request_auth, by the connection-request
// service for a device's credentials (cr_auth.cc), and authorize, by the
// CWMP server for a client certificate at the Inform (cert_auth.cc).
enum Standalone { kCrAuth, kAuthorize, kStandaloneCount };
extern const std::array<const char*, kStandaloneCount> kStandaloneNames;
inline constexpr const char* kCrAuthHook = "connection_request_auth";
inline constexpr const char* kAuthorizeHook = "authorize";

// The hook `name` is closest to (a likely misspelling), or "".
std::string closest_hook(std::string_view name);

// bind_jobs.cc: luacs.job and luacs.settings and the global `settings`,
// into a new state; finish_settings (a lua_CFunction, run protected once
// every file has run) merges the overrides into each settings section;
// push_jobs pushes the list of registered job specs, in order.
void open_jobs(lua_State* L);
int finish_settings(lua_State* L);
void push_jobs(lua_State* L);

// One job's function for one hook (luacs.job).
struct JobHook {
  std::string name;
  int ref = LUA_NOREF;
};

class State {
 public:
  // Builds a sandboxed state, runs every file of `files` in it and resolves
  // the hooks. On failure returns nullptr with *error = "file:line: message".
  // `warnings` (optional) collects misspelt hooks and redefinitions.
  static std::shared_ptr<State> load(const std::vector<SourceFile>& files, uint64_t generation,
                                     const Limits& limits, std::string* error,
                                     std::vector<std::string>* warnings = nullptr,
                                     std::vector<std::string>* hooks = nullptr,
                                     std::vector<std::string>* tasks = nullptr,
                                     std::vector<std::string>* jobs = nullptr);
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  static State* of(lua_State* L) { return *static_cast<State**>(lua_getextraspace(L)); }

  lua_State* L() const { return L_; }
  uint64_t generation() const { return generation_; }
  const Limits& limits() const { return limits_; }
  // Registry reference of the global hook function, LUA_NOREF when absent.
  int hook(Hook h) const { return hooks_[h]; }
  // The jobs' functions for a hook, in registration order (run after the
  // global hook).
  const std::vector<JobHook>& jobs(Hook h) const { return jobs_[h]; }
  bool has_hooks() const;
  bool has_tasks() const { return has_tasks_; }
  int tasks_ref() const { return tasks_ref_; }
  // Registry reference of a standalone hook, LUA_NOREF when absent.
  int standalone_ref(Standalone h) const { return standalone_[h]; }
  size_t memory() const { return used_; }

  // The budget of one hook call. begin() before a call, then every resume
  // runs between resumed() and paused(); running time and instructions add
  // up across the resumes of one call.
  void begin_call();
  void resumed(lua_State* co);
  // The running time of this resume.
  std::chrono::steady_clock::duration paused();
  bool tripped() const { return tripped_; }

  // Work a C function of the sandbox does for the running policy (a
  // pattern-matching step, an element moved, a byte compiled; sandbox.cc,
  // patterns.cc), counted like instructions: Lua's count hook never runs
  // inside a C function, so one that loops on the policy's behalf says so
  // here. Past the instruction or time budget the call stops as if the hook
  // had stopped it: raises (does not return) with the policy's line.
  static void charge(lua_State* L, uint64_t work);

  // Runs `nargs` arguments below the function on top of L (already pushed)
  // in protected mode with the budget, on a thread of its own; returns the
  // lua_pcall status with the results (or the error) in place of them.
  int pcall_budgeted(int nargs, int nresults);

  // Error message of a failed call with the position of the failing Lua
  // line added when the message has none (memory errors).
  static std::string error_of(lua_State* co, int status);

  // True while the policy files run (luacs.job and luacs.settings are
  // refused at any other time).
  bool loading = false;
  // The run whose hook is executing now (set by the engine around resumes):
  // a `dev` of another session is refused.
  const void* active_run = nullptr;
  // Finished coroutines kept for the next hooks (thread, registry ref).
  std::vector<std::pair<lua_State*, int>> thread_pool;
  unsigned runs_since_gc = 0;
  // A call left much garbage, or a stack the collector would never shrink:
  // the next call starts with a full collection (as after a stopped call).
  bool collect_before_next = false;
  static constexpr size_t kCollectAfter = size_t{4} << 20;  // bytes a call grew the state by

  // Parameter names a model refused with 9005 (a model: OUI, ProductClass
  // and SoftwareVersion), so dev:get does not ask the next device of that
  // model for them and narrow a fault down again. Bounded: past kMaxModels
  // models (or kMaxNames names for one) it starts over.
  struct InvalidNames {
    static constexpr size_t kMaxModels = 4096, kMaxNames = 512;
    std::unordered_map<std::string, std::unordered_set<std::string>> by_model;
    bool has(const std::string& model, const std::string& name) const {
      auto it = by_model.find(model);
      return it != by_model.end() && it->second.count(name);
    }
    void add(const std::string& model, const std::string& name) {
      if (by_model.size() >= kMaxModels && !by_model.count(model)) by_model.clear();
      auto& names = by_model[model];
      if (names.size() >= kMaxNames) names.clear();
      names.insert(name);
    }
  } invalid_names;

 private:
  State() = default;
  static void* alloc(void* ud, void* ptr, size_t osize, size_t nsize);
  static void count_hook(lua_State* L, lua_Debug* ar);
  void trip(lua_State* L, std::string why);
  // Trips when the call is over its instructions or its time.
  void check_budget();
  // Raises the trip reason at `level` (0 in the hook, 1 in a C function)
  // and keeps raising at every instruction until the call ends.
  [[noreturn]] void raise_tripped(lua_State* L, int level);
  void open_sandbox();
  // Once every file has run: `_G` keeps the metatable it has.
  void seal_globals();

  lua_State* L_ = nullptr;
  uint64_t generation_ = 0;
  Limits limits_;
  std::array<int, kHookCount> hooks_{LUA_NOREF, LUA_NOREF, LUA_NOREF};
  std::array<std::vector<JobHook>, kHookCount> jobs_;
  int tasks_ref_ = LUA_NOREF;
  std::array<int, kStandaloneCount> standalone_{LUA_NOREF, LUA_NOREF};
  bool has_tasks_ = false;

  // Memory: the cap holds only while policy code runs (our own set-up code
  // must never see an allocation fail outside a protected call).
  size_t used_ = 0;
  bool enforce_ = false;
  // Bytes allocated since the last budget check: past kCheckBytes the next
  // instruction checks (a C function that builds a large string is one
  // instruction; a thousand of them would run between two checks).
  size_t grown_ = 0;
  bool early_ = false;

  // Budget of the current call.
  uint64_t instructions_ = 0;
  uint64_t unclocked_ = 0;  // charged since charge() last looked at the clock
  std::chrono::steady_clock::duration ran_{};
  std::chrono::steady_clock::time_point resumed_at_{};
  lua_State* running_ = nullptr;
  bool tripped_ = false;
  std::string trip_reason_;
};

}  // namespace luacs::lua
