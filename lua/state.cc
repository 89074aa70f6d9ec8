#include "lua/state.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/util/json.h"
#include "core/util/log.h"

namespace luacs::lua {

const std::array<const char*, kHookCount> kHookNames = {"on_transfer_complete", "on_event",
                                                        "on_inform"};

std::string joined_args(lua_State* L, int from) {
  std::string out;
  int n = lua_gettop(L);
  for (int i = from; i <= n; ++i) {
    if (i > from) out += ' ';
    size_t len = 0;
    const char* s = luaL_tolstring(L, i, &len);
    out.append(s, len);
    lua_pop(L, 1);
  }
  return out;
}

std::string caller_position(lua_State* L) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
    std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
    return src + ":" + std::to_string(ar.currentline);
  }
  return "?";
}

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kCountStep = 1000;  // instructions between two budget checks
constexpr size_t kMaxFileBytes = 1 << 20;
constexpr size_t kMaxTotalBytes = 8 << 20;
constexpr size_t kMaxFiles = 256;
constexpr int kMaxJsonDepth = 64;

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

// "policies/default/x.lua:12" for the function on top of the stack.
std::string where_defined(lua_State* L) {
  lua_Debug ar;
  lua_pushvalue(L, -1);
  if (!lua_getinfo(L, ">S", &ar)) return "?";
  std::string src = ar.source && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
  return src + ":" + std::to_string(ar.linedefined);
}

// ---- functions of the sandbox ----

int l_print(lua_State* L) {
  std::string line = "policy " + caller_position(L) + ": " + joined_args(L, 1);
  log::info(line);
  return 0;
}

int l_warn(lua_State* L) {
  std::string line = "policy " + caller_position(L) + ": " + joined_args(L, 1);
  log::warn(line);
  return 0;
}

// load(chunk [, chunkname [, mode [, env]]]) with text chunks only.
int l_load(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  const char* name = luaL_optstring(L, 2, "=(load)");
  const char* mode = luaL_optstring(L, 3, "t");
  if (std::strchr(mode, 'b')) return luaL_error(L, "binary chunks are not allowed");
  int env = !lua_isnone(L, 4) ? 4 : 0;
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
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int l_version_compare(lua_State* L) {
  size_t la = 0, lb = 0;
  const char* a = luaL_checklstring(L, 1, &la);
  const char* b = luaL_checklstring(L, 2, &lb);
  lua_pushinteger(L, version_compare({a, la}, {b, lb}));
  return 1;
}

int l_json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  std::string out, err;
  try {
    out = to_json(L, 1);
  } catch (const std::exception& e) {
    err = e.what();
  }
  if (!err.empty()) return luaL_error(L, "json_encode: %s", err.c_str());
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int l_json_decode(lua_State* L) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  std::string err;
  int top = lua_gettop(L);
  try {
    push_json(L, {s, len});
  } catch (const std::exception& e) {
    err = e.what();
  }
  if (!err.empty()) {
    lua_settop(L, top);
    return luaL_error(L, "json_decode: %s", err.c_str());
  }
  return 1;
}

void push_json_value(lua_State* L, const nlohmann::json& j, int depth) {
  if (depth > kMaxJsonDepth) throw std::runtime_error("nested too deeply");
  luaL_checkstack(L, 3, "json");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      lua_pushnil(L);
      break;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(L, j.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
      lua_pushinteger(L, j.get<int64_t>());
      break;
    case nlohmann::json::value_t::number_unsigned:
      lua_pushinteger(L, static_cast<lua_Integer>(j.get<uint64_t>()));
      break;
    case nlohmann::json::value_t::number_float:
      lua_pushnumber(L, j.get<double>());
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      lua_Integer i = 1;
      for (const auto& e : j) {
        push_json_value(L, e, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (const auto& [k, v] : j.items()) {
        lua_pushlstring(L, k.data(), k.size());
        push_json_value(L, v, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    default:
      lua_pushnil(L);
  }
}

nlohmann::json json_of(lua_State* L, int idx, int depth) {
  if (depth > kMaxJsonDepth) throw std::runtime_error("nested too deeply (or a cycle)");
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return lua_toboolean(L, idx) != 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) return static_cast<int64_t>(lua_tointeger(L, idx));
      return lua_tonumber(L, idx);
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      return std::string(s, len);
    }
    case LUA_TTABLE: {
      luaL_checkstack(L, 4, "json");
      lua_Unsigned n = lua_rawlen(L, idx);
      // A sequence 1..n with nothing else is an array; {} is an object.
      size_t count = 0;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        ++count;
        lua_pop(L, 1);
      }
      if (n > 0 && count == n) {
        nlohmann::json a = nlohmann::json::array();
        for (lua_Unsigned i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, static_cast<lua_Integer>(i));
          a.push_back(json_of(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return a;
      }
      nlohmann::json o = nlohmann::json::object();
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) {
          size_t len = 0;
          const char* k = lua_tolstring(L, -2, &len);
          key.assign(k, len);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
          lua_pushvalue(L, -2);
          key = lua_tostring(L, -1);
          lua_pop(L, 1);
        } else {
          lua_pop(L, 2);
          throw std::runtime_error("table keys must be strings or numbers");
        }
        o[key] = json_of(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return o;
    }
    default:
      throw std::runtime_error(std::string("cannot encode a ") + luaL_typename(L, idx));
  }
}

}  // namespace

void push_json(lua_State* L, std::string_view json) {
  auto j = nlohmann::json::parse(json.begin(), json.end(), nullptr, true, false);
  push_json_value(L, j, 0);
}

std::string to_json(lua_State* L, int index) {
  return util::json_text(json_of(L, index, 0));
}

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
  return p;
}

void State::count_hook(lua_State* L, lua_Debug*) {
  State* s = State::of(L);
  if (!s->tripped_) {
    s->instructions_ += kCountStep;
    if (s->instructions_ > s->limits_.max_instructions) {
      s->trip(L, "policy budget exceeded: more than " +
                     std::to_string(s->limits_.max_instructions) + " instructions");
    } else if (s->ran_ + (SteadyClock::now() - s->resumed_at_) > s->limits_.time_limit) {
      s->trip(L, "policy budget exceeded: ran longer than " +
                     std::to_string(s->limits_.time_limit.count()) + " ms");
    }
  }
  if (s->tripped_) {
    // Stays tripped: every instruction raises again, so a pcall in the
    // policy cannot swallow the stop.
    lua_sethook(L, &State::count_hook, LUA_MASKCOUNT, 1);
    s->enforce_ = false;  // room for the error message
    // Level 0 in a hook is the Lua function being run: its line.
    luaL_where(L, 0);
    lua_pushstring(L, s->trip_reason_.c_str());
    lua_concat(L, 2);
    lua_error(L);
  }
}

void State::trip(lua_State*, std::string why) {
  tripped_ = true;
  trip_reason_ = std::move(why);
}

void State::begin_call() {
  instructions_ = 0;
  ran_ = {};
  tripped_ = false;
  trip_reason_.clear();
}

void State::resumed(lua_State* co) {
  running_ = co;
  resumed_at_ = SteadyClock::now();
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
  begin_call();
  resumed(L_);
  int rc = lua_pcall(L_, nargs, nresults, 0);
  paused();
  lua_sethook(L_, &State::count_hook, LUA_MASKCOUNT, kCountStep);
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
  for (int r : hooks_)
    if (r != LUA_NOREF) return true;
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
  lua_pushcfunction(L, l_load);
  lua_setglobal(L, "load");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, l_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_pushcfunction(L, l_print);
  lua_setglobal(L, "print");

  static const luaL_Reg kLuacs[] = {
      {"version_compare", l_version_compare},
      {"json_encode", l_json_encode},
      {"json_decode", l_json_decode},
      {"log", l_print},
      {"warn", l_warn},
      {nullptr, nullptr},
  };
  luaL_newlib(L, kLuacs);
  lua_pushinteger(L, static_cast<lua_Integer>(generation_));
  lua_setfield(L, -2, "generation");
  lua_setglobal(L, "luacs");

  lua_newtable(L);
  lua_setglobal(L, "tasks");
}

std::shared_ptr<State> State::load(const std::vector<SourceFile>& files, uint64_t generation,
                                   const Limits& limits, std::string* error,
                                   std::vector<std::string>* warnings,
                                   std::vector<std::string>* hooks,
                                   std::vector<std::string>* tasks) {
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

  for (int h = 0; h < kHookCount; ++h) {
    lua_getglobal(L, kHookNames[h]);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      continue;
    }
    if (!lua_isfunction(L, -1)) {
      *error = std::string(kHookNames[h]) + " is a " + luaL_typename(L, -1) + ", not a function";
      return nullptr;
    }
    s->hooks_[h] = luaL_ref(L, LUA_REGISTRYINDEX);
    if (hooks) hooks->push_back(kHookNames[h]);
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
        std::string closest;
        for (const char* h : kHookNames) {
          if (name == h)
            is_hook = true;
          else if (distance(name, h) <= 2)
            closest = h;
        }
        if (!is_hook && (!closest.empty() || name.rfind("on_", 0) == 0)) {
          std::string msg = where_defined(L) + ": global function '" + name + "' is not a hook";
          if (!closest.empty()) msg += " (did you mean " + closest + "?)";
          msg += "; hooks are on_inform, on_event and on_transfer_complete";
          warnings->push_back(std::move(msg));
        }
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  return s;
}

std::vector<SourceFile> read_policy_dir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d)
    throw std::runtime_error(dir + ": cannot read the policy folder: " + std::strerror(errno));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.empty() || n[0] == '.' || n.size() < 5 || n.compare(n.size() - 4, 4, ".lua") != 0)
      continue;
    names.push_back(std::move(n));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  if (names.size() > kMaxFiles)
    throw std::runtime_error(dir + ": more than " + std::to_string(kMaxFiles) + " policy files");
  std::vector<SourceFile> files;
  size_t total = 0;
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  for (const auto& n : names) {
    std::string path = base + "/" + n;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<size_t>(st.st_size) > kMaxFileBytes)
      throw std::runtime_error(path + ": larger than " + std::to_string(kMaxFileBytes >> 20) +
                               " MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
    std::string text;
    text.resize(static_cast<size_t>(st.st_size));
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    total += text.size();
    if (total > kMaxTotalBytes)
      throw std::runtime_error(dir + ": policy files larger than " +
                               std::to_string(kMaxTotalBytes >> 20) + " MiB in all");
    files.push_back({path, std::move(text)});
  }
  if (files.empty()) throw std::runtime_error(dir + ": no *.lua file in the policy folder");
  return files;
}

// ---- check, the manager ----

CheckResult check(const std::string& dir, const Limits& limits) {
  CheckResult r;
  auto p = std::make_shared<Policy>();
  p->dir = dir;
  try {
    p->files = read_policy_dir(dir);
  } catch (const std::exception& e) {
    r.error = e.what();
    return r;
  }
  std::string error;
  auto st = State::load(p->files, 0, limits, &error, &p->warnings, &p->hooks, &p->tasks);
  r.warnings = p->warnings;
  if (!st) {
    r.error = error;
    return r;
  }
  r.ok = true;
  p->loaded_at = std::chrono::system_clock::now();
  r.policy = std::move(p);
  return r;
}

PolicyManager::PolicyManager(std::string dir, Limits limits)
    : dir_(std::move(dir)), limits_(limits) {}

CheckResult PolicyManager::reload() {
  std::lock_guard reload_lock(reload_mu_);
  if (dir_.empty()) {
    CheckResult r;
    r.error = "no policy folder configured ([policy] dir)";
    return r;
  }
  CheckResult r = check(dir_, limits_);
  std::lock_guard lock(mu_);
  ++reloads_;
  if (!r.ok) {
    ++reload_failures_;
    last_error_ = r.error;
    last_error_at_ = std::chrono::system_clock::now();
    return r;
  }
  auto p = std::make_shared<Policy>(*r.policy);
  p->generation = ++last_generation_;
  current_ = p;
  r.policy = p;
  last_error_.clear();
  generation_.store(p->generation, std::memory_order_release);
  return r;
}

std::shared_ptr<const Policy> PolicyManager::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

PolicyManager::Status PolicyManager::status() const {
  std::lock_guard lock(mu_);
  Status s;
  s.dir = dir_;
  if (current_) {
    s.generation = current_->generation;
    s.loaded_at = current_->loaded_at;
    s.hooks = current_->hooks;
    s.tasks = current_->tasks;
    s.warnings = current_->warnings;
  }
  s.last_error = last_error_;
  s.last_error_at = last_error_at_;
  s.reloads = reloads_;
  s.reload_failures = reload_failures_;
  return s;
}

// ---- version_compare ----

namespace {

// One field of a version: a number, or a pre-release word with its number
// ("beta2" -> rank 1, 2).
struct Field {
  int rank = 3;  // alpha 0, beta 1, rc 2, release 3
  uint64_t number = 0;
};

std::vector<Field> fields(std::string_view v) {
  std::vector<Field> out;
  size_t i = 0;
  while (i < v.size()) {
    if (v[i] == '.' || v[i] == '-' || v[i] == '_' || v[i] == ' ') {
      ++i;
      continue;
    }
    Field f;
    if (std::isdigit(static_cast<unsigned char>(v[i]))) {
      while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])))
        f.number = f.number * 10 + static_cast<uint64_t>(v[i++] - '0');
      out.push_back(f);
      continue;
    }
    std::string word;
    while (i < v.size() && std::isalpha(static_cast<unsigned char>(v[i])))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(v[i++])));
    if (word.empty()) {
      ++i;  // any other character separates
      continue;
    }
    f.rank = word == "alpha" || word == "a" ? 0 : word == "beta" || word == "b" ? 1 : 2;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])))
      f.number = f.number * 10 + static_cast<uint64_t>(v[i++] - '0');
    out.push_back(f);
  }
  return out;
}

}  // namespace

int version_compare(std::string_view a, std::string_view b) {
  auto fa = fields(a), fb = fields(b);
  size_t n = std::max(fa.size(), fb.size());
  for (size_t i = 0; i < n; ++i) {
    // A missing field is a release 0: "7.1" == "7.1.0", "7.1rc1" < "7.1".
    Field x = i < fa.size() ? fa[i] : Field{3, 0};
    Field y = i < fb.size() ? fb[i] : Field{3, 0};
    // A pre-release word sorts below any number at the same place.
    if (x.rank != y.rank) return x.rank < y.rank ? -1 : 1;
    if (x.number != y.number) return x.number < y.number ? -1 : 1;
  }
  return 0;
}

}  // namespace luacs::lua
