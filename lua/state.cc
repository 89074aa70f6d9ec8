// One policy generation in a Lua state (lua/state.h): the sandbox, the
// instruction and time budget of a hook call, the memory cap, and loading
// the policy files. Owned by one worker thread.
#include "lua/state.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "lua/binding.h"
#include "lua/sandbox.h"

namespace luacs::lua {

const std::array<const char*, kHookCount> kHookNames = {"on_transfer_complete", "on_event",
                                                        "on_inform"};
const std::array<const char*, kStandaloneCount> kStandaloneNames = {kCrAuthHook, kAuthorizeHook};

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kCountStep = 1000;  // instructions between two budget checks
// What compiling a byte of a chunk given to load() counts for (as many
// instructions run in the time the compiler takes).
constexpr uint64_t kCompileWork = 8;
// Bytes allocated that bring the next budget check forward.
constexpr size_t kCheckBytes = size_t{1} << 20;

// Levenshtein distance of two short names.
size_t distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_hook(std::string_view name) {
  for (const char* h : kHookNames)
    if (name != h && distance(name, h) <= 2) return h;
  return {};
}

namespace {

// "policies/default/x.lua:12" for the function on top of the stack.
std::string where_defined(lua_State* L) {
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (!lua_getinfo(L, ">S", &ar)) return "?";
  std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
  return src + ":" + std::to_string(ar.linedefined);
}

// ---- functions of the sandbox ----

// load(chunk [, chunkname [, mode [, env]]]) with text chunks only.
int l_load(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, "=(load)");
  const char* mode = luaL_optstring(L, 3, "t");
  if (std::strchr(mode, 'b')) return luaL_error(L, "binary chunks are not allowed");
  int env = !lua_isnone(L, 4) ? 4 : 0;
  // The compiler never consults the hook: a chunk costs by its length.
  State::charge(L, len * kCompileWork);
  if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (env) {
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  }
  return 1;
}

// setmetatable without __gc: a finalizer would run outside any hook's
// budget (during a collection step between sessions).
int l_setmetatable(lua_State* L) {
  if (lua_istable(L, 2)) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not allowed");
    lua_pop(L, 1);
  }
  // Lua's own, run in this frame: its errors ("cannot change a protected
  // metatable") carry the policy's line.
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

// The message handler of xpcall (upvalue: the policy's). An error raised
// by the count hook is handled with hooks off: the policy's handler would
// run unbudgeted (xpcall(f, function() while true do end end) held the
// worker for good). Such an error is the budget's stop, passed on as it is.
int xpcall_handler(lua_State* L) {
  if (State::of(L)->tripped()) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int l_xpcall(lua_State* L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, xpcall_handler, 1);
  lua_replace(L, 2);
  // Lua's own, in this frame (its continuation included: a hook may wait
  // for the CPE inside xpcall).
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

}  // namespace

// ---- State ----

void* State::alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* s = static_cast<State*>(ud);
  const size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    s->used_ -= old;
    std::free(ptr);
    return nullptr;
  }
  if (s->enforce_ && nsize > old && s->used_ + (nsize - old) > s->limits_.memory_limit) {
    s->tripped_ = true;
    if (s->trip_reason_.empty())
      s->trip_reason_ = "policy memory limit exceeded (" +
                        std::to_string(s->limits_.memory_limit >> 20) + " MiB per Lua state)";
    // Whatever catches the memory error trips over the budget at once.
    if (s->running_) lua_sethook(s->running_, &State::count_hook, LUA_MASKCOUNT, 1);
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nullptr;
  s->used_ = s->used_ - old + nsize;
  if (s->enforce_ && nsize > old) {
    s->grown_ += nsize - old;
    if (s->grown_ >= kCheckBytes && s->running_ && !s->early_) {
      s->early_ = true;
      lua_sethook(s->running_, &State::count_hook, LUA_MASKCOUNT, 1);
    }
  }
  return p;
}

void State::check_budget() {
  if (tripped_) return;
  if (instructions_ > limits_.max_instructions) {
    trip(nullptr, "policy budget exceeded: more than " + std::to_string(limits_.max_instructions) +
                      " instructions");
  } else if (ran_ + (SteadyClock::now() - resumed_at_) > limits_.time_limit) {
    trip(nullptr, "policy budget exceeded: ran longer than " +
                      std::to_string(limits_.time_limit.count()) + " ms");
  }
}

void State::raise_tripped(lua_State* L, int level) {
  // Stays tripped: every instruction raises again, so a pcall in the
  // policy cannot swallow the stop.
  lua_sethook(L, &State::count_hook, LUA_MASKCOUNT, 1);
  enforce_ = false;  // room for the error message
  luaL_where(L, level);
  lua_pushstring(L, trip_reason_.c_str());
  lua_concat(L, 2);
  lua_error(L);
  std::abort();  // lua_error does not return
}

void State::count_hook(lua_State* L, lua_Debug*) {
  State* s = State::of(L);
  if (!s->tripped_) {
    // A check brought forward by an allocation counts as a full step: the
    // instructions since the last one are not known, and a loop that
    // allocates a MiB at every turn must not run for free.
    s->instructions_ += kCountStep;
    s->grown_ = 0;
    s->check_budget();
    if (!s->tripped_ && s->early_) {
      s->early_ = false;
      lua_sethook(L, &State::count_hook, LUA_MASKCOUNT, kCountStep);
    }
  }
  // Level 0 in a hook is the Lua function being run: its line.
  if (s->tripped_) s->raise_tripped(L, 0);
}

void State::charge(lua_State* L, uint64_t work) {
  State* s = State::of(L);
  if (!s->tripped_) {
    s->instructions_ += work;
    s->unclocked_ += work;
    if (s->instructions_ > s->limits_.max_instructions || s->unclocked_ >= kCountStep) {
      s->unclocked_ = 0;
      s->check_budget();
    }
  }
  // Level 1 from a C function: the policy line that called it.
  if (s->tripped_) s->raise_tripped(L, 1);
}

void State::trip(lua_State*, std::string why) {
  tripped_ = true;
  trip_reason_ = std::move(why);
}

void State::begin_call() {
  // A call stopped by the budget or the cap may have left up to the cap in
  // garbage, old enough that the generational collector's steps between
  // sessions never reach it (or a thread with a huge stack, run.cc):
  // collected before the next call.
  if (tripped_ || collect_before_next) lua_gc(L_, LUA_GCCOLLECT);
  collect_before_next = false;
  instructions_ = 0;
  unclocked_ = 0;
  ran_ = {};
  tripped_ = false;
  trip_reason_.clear();
}

void State::resumed(lua_State* co) {
  running_ = co;
  resumed_at_ = SteadyClock::now();
  grown_ = 0;
  early_ = false;
  lua_sethook(co, &State::count_hook, LUA_MASKCOUNT, kCountStep);
  enforce_ = true;
}

SteadyClock::duration State::paused() {
  enforce_ = false;
  auto ran = SteadyClock::now() - resumed_at_;
  ran_ += ran;
  running_ = nullptr;
  return ran;
}

int State::pcall_budgeted(int nargs, int nresults) {
  // On a thread of its own: a call that grew its stack (deep recursion,
  // table.unpack of a million values) leaves that stack behind in its
  // thread, and the generational collector never shrinks a live thread's
  // stack. This one is garbage once the call is over.
  lua_State* co = lua_newthread(L_);
  lua_insert(L_, -(nargs + 2));
  lua_xmove(L_, co, nargs + 1);
  begin_call();
  const size_t before = used_;
  resumed(co);
  const int rc = lua_pcall(co, nargs, nresults, 0);
  paused();
  if (used_ > before + kCollectAfter) collect_before_next = true;
  const int n = rc != LUA_OK ? 1 : nresults == LUA_MULTRET ? lua_gettop(co) : nresults;
  lua_xmove(co, L_, n);
  lua_remove(L_, -(n + 1));  // the thread
  return rc;
}

std::string State::error_of(lua_State* co, int status) {
  std::string msg;
  if (lua_type(co, -1) == LUA_TSTRING) {
    size_t len = 0;
    const char* s = lua_tolstring(co, -1, &len);
    msg.assign(s, std::min<size_t>(len, 2000));
  } else {
    msg = std::string("error object is a ") + luaL_typename(co, -1);
  }
  if (status == LUA_ERRMEM) {
    State* s = State::of(co);
    if (!s->trip_reason_.empty()) msg = s->trip_reason_;
    // The innermost Lua line still on the stack.
    lua_Debug ar;
    for (int level = 0; lua_getstack(co, level, &ar); ++level) {
      if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
        std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
        msg = src + ":" + std::to_string(ar.currentline) + ": " + msg;
        break;
      }
    }
  }
  return msg;
}

State::~State() {
  if (L_) lua_close(L_);
}

bool State::has_hooks() const {
  for (int h = 0; h < kHookCount; ++h)
    if (hooks_[h] != LUA_NOREF || !jobs_[h].empty()) return true;
  return false;
}

void State::open_sandbox() {
  lua_State* L = L_;
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  lua_pop(L, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  lua_pop(L, 1);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  lua_pop(L, 1);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  lua_pop(L, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  lua_pop(L, 1);
  // os: time, clock and date only (loaded into a private table first).
  luaopen_os(L);
  lua_createtable(L, 0, 3);
  for (const char* f : {"time", "clock", "date"}) {
    lua_getfield(L, -2, f);
    lua_setfield(L, -2, f);
  }
  lua_setglobal(L, "os");
  lua_pop(L, 1);

  for (const char* f : {"dofile", "loadfile", "collectgarbage", "warn"}) {
    lua_pushnil(L);
    lua_setglobal(L, f);
  }
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_pushcfunction(L, (safe<"load", l_load>));
  lua_setglobal(L, "load");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, (safe<"setmetatable", l_setmetatable>), 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, "xpcall");
  lua_pushcclosure(L, (safe<"xpcall", l_xpcall>), 1);
  lua_setglobal(L, "xpcall");
  open_luacs(L, generation_);
  open_jobs(L);
  open_bounded(L);
  open_patterns(L);
  // The libraries are shared by every file and every hook of the state:
  // read-only views, writable only while the files load (sandbox.h).
  for (const char* lib :
       {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, LUA_OSLIBNAME, "luacs"})
    make_library_view(L, lib);
  protect_shared(L);

  lua_newtable(L);
  lua_setglobal(L, "tasks");
}

void State::seal_globals() {
  // setmetatable(_G, ...) in a hook would change every later hook's
  // globals on this worker; a metatable a file gave _G stays.
  lua_State* L = L_;
  lua_pushglobaltable(L);
  if (!lua_getmetatable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

std::shared_ptr<State> State::load(const std::vector<SourceFile>& files, uint64_t generation,
                                   const Limits& limits, std::string* error,
                                   std::vector<std::string>* warnings,
                                   std::vector<std::string>* hooks, std::vector<std::string>* tasks,
                                   std::vector<std::string>* jobs) {
  std::shared_ptr<State> s(new State());
  s->generation_ = generation;
  s->limits_ = limits;
  s->L_ = lua_newstate(&State::alloc, s.get());
  if (!s->L_) {
    *error = "cannot create a Lua state";
    return nullptr;
  }
  lua_State* L = s->L_;
  *static_cast<State**>(lua_getextraspace(L)) = s.get();
  lua_gc(L, LUA_GCGEN, 0, 0);
  s->open_sandbox();
  lua_sethook(L, &State::count_hook, LUA_MASKCOUNT, kCountStep);

  // Where each hook was last defined, to warn about redefinitions.
  std::array<std::string, kHookCount> defined_at;
  s->loading = true;
  for (const auto& f : files) {
    if (luaL_loadbufferx(L, f.text.data(), f.text.size(), ("@" + f.name).c_str(), "t") != LUA_OK) {
      *error = lua_tostring(L, -1);
      return nullptr;
    }
    int rc = s->pcall_budgeted(0, 0);
    if (rc != LUA_OK) {
      *error = error_of(L, rc);
      return nullptr;
    }
    for (int h = 0; h < kHookCount; ++h) {
      lua_getglobal(L, kHookNames[h]);
      if (lua_isfunction(L, -1)) {
        std::string at = where_defined(L);
        if (!defined_at[h].empty() && defined_at[h] != at && warnings)
          warnings->push_back(at + ": " + kHookNames[h] + " redefines the one of " + defined_at[h]);
        defined_at[h] = at;
      }
      lua_pop(L, 1);
    }
  }

  s->loading = false;
  lua_pushcfunction(L, finish_settings);
  if (int rc = s->pcall_budgeted(0, 0); rc != LUA_OK) {
    *error = error_of(L, rc);
    return nullptr;
  }

  // The jobs (luacs.job), in order: per hook, the functions to call.
  push_jobs(L);
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; ++i) {
    lua_getfield(L, -1, "name");
    std::string name = lua_tostring(L, -1);
    lua_pop(L, 1);
    bool any = false;
    for (int h = 0; h < kHookCount; ++h) {
      if (lua_getfield(L, -1, kHookNames[h]) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        continue;
      }
      s->jobs_[h].push_back({name, luaL_ref(L, LUA_REGISTRYINDEX)});
      any = true;
    }
    if (jobs) jobs->push_back(any ? name : name + " (off)");
    lua_pop(L, 1);
  }
  lua_pop(L, 2);

  for (int h = 0; h < kHookCount; ++h) {
    lua_getglobal(L, kHookNames[h]);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      if (hooks && !s->jobs_[h].empty()) hooks->push_back(kHookNames[h]);
      continue;
    }
    if (!lua_isfunction(L, -1)) {
      *error = std::string(kHookNames[h]) + " is a " + luaL_typename(L, -1) + ", not a function";
      return nullptr;
    }
    s->hooks_[h] = luaL_ref(L, LUA_REGISTRYINDEX);
    if (hooks) hooks->push_back(kHookNames[h]);
  }

  for (int h = 0; h < kStandaloneCount; ++h) {
    const char* name = kStandaloneNames[h];
    if (lua_getglobal(L, name) == LUA_TNIL) {
      lua_pop(L, 1);
    } else if (!lua_isfunction(L, -1)) {
      *error = std::string(name) + " is a " + luaL_typename(L, -1) + ", not a function";
      return nullptr;
    } else {
      s->standalone_[h] = luaL_ref(L, LUA_REGISTRYINDEX);
      if (hooks) hooks->push_back(name);
    }
  }

  lua_getglobal(L, "tasks");
  if (!lua_istable(L, -1)) {
    *error = std::string("the global 'tasks' is a ") + luaL_typename(L, -1) +
             ", not a table of functions";
    return nullptr;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isfunction(L, -1)) {
      lua_pushvalue(L, -2);
      std::string key = luaL_tolstring(L, -1, nullptr);
      *error = "tasks." + key + " is a " + luaL_typename(L, -3) + ", not a function";
      return nullptr;
    }
    s->has_tasks_ = true;
    if (tasks) tasks->push_back(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  s->tasks_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  if (tasks) std::sort(tasks->begin(), tasks->end());

  // Global functions that look like a misspelt hook.
  if (warnings) {
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1) && !lua_iscfunction(L, -1)) {
        std::string name = lua_tostring(L, -2);
        bool is_hook = false;
        for (const char* h : kHookNames) is_hook |= name == h;
        for (const char* h : kStandaloneNames) is_hook |= name == h;
        std::string closest = closest_hook(name);
        if (!is_hook && (!closest.empty() || name.rfind("on_", 0) == 0)) {
          std::string msg = where_defined(L) + ": global function '" + name + "' is not a hook";
          if (!closest.empty()) msg += " (did you mean " + closest + "?)";
          msg +=
              "; hooks are on_inform, on_event, on_transfer_complete, "
              "connection_request_auth and authorize";
          warnings->push_back(std::move(msg));
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  s->seal_globals();
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  return s;
}

}  // namespace luacs::lua
