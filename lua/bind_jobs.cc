// luacs.job and luacs.settings (docs/policy-api.md §3 and §7): the jobs a
// policy registers while its files load, and the settings sections whose
// operator overrides are merged into the defaults once every file has run.
// On the thread that loads the Lua state.
#include <string>
#include <string_view>

#include "lua/binding.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

constexpr const char* kJobsKey = "luacs.jobs";          // registry: list of job specs
constexpr const char* kSettingsKey = "luacs.settings";  // registry: name -> section table

void need_loading(lua_State* L, const char* what) {
  if (!State::of(L)->loading)
    luaL_error(L, "%s is for the top level of a policy file, not for a hook or a task", what);
}

// The registry table `key`, created on first use, pushed.
void registry_table(lua_State* L, const char* key) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
}

// A table merged key by key rather than replaced: a table with named keys
// only (a list, such as dns_servers, is a value).
bool is_record(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || lua_rawlen(L, idx) != 0) return false;
  if (!lua_getmetatable(L, idx)) return true;
  lua_pop(L, 1);
  return false;
}

// Copies the keys of the table at `src` into the one at `dst`, recursing
// into records both sides have. `overwrite` false: a key `dst` has wins.
void merge(lua_State* L, int dst, int src, bool overwrite, int depth = 0) {
  if (depth > 16) luaL_error(L, "luacs.settings: tables nested more than 16 deep");
  dst = lua_absindex(L, dst);
  src = lua_absindex(L, src);
  lua_pushnil(L);
  while (lua_next(L, src)) {
    lua_pushvalue(L, -2);
    lua_rawget(L, dst);  // key value old
    if (is_record(L, -1) && is_record(L, -2)) {
      merge(L, -1, -2, overwrite, depth + 1);
      lua_pop(L, 2);
      continue;
    }
    bool keep = !overwrite && !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (keep) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, dst);
  }
}

// The global `settings`, pushed; an error unless it is a table.
void push_settings(lua_State* L) {
  if (lua_getglobal(L, "settings") != LUA_TTABLE)
    luaL_error(L, "the global 'settings' is a %s, not a table", luaL_typename(L, -1));
}

bool valid_section(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

// luacs.settings(name, defaults) -> settings.<name>, the defaults with
// what an earlier file set in settings.<name> merged over them. What a
// later file sets is merged in once every file has run (finish_load).
int l_settings(lua_State* L) {
  need_loading(L, "luacs.settings");
  size_t len = 0;
  const char* name = luaL_checklstring(L, 1, &len);
  if (!valid_section({name, len}))
    luaL_error(L, "luacs.settings: '%s' is not a section name (A-Z a-z 0-9 _)", name);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  registry_table(L, kSettingsKey);  // 3
  push_settings(L);                 // 4
  if (lua_getfield(L, 3, name) == LUA_TTABLE) {
    // A second file with the same section: its defaults fill in what is missing.
    merge(L, 5, 2, false);
    return 1;
  }
  lua_pop(L, 1);
  int have = lua_getfield(L, 4, name);  // 5: an override of an earlier file
  if (have == LUA_TTABLE)
    merge(L, 2, 5, true);
  else if (have != LUA_TNIL)
    luaL_error(L, "settings.%s is a %s, not a table", name, luaL_typename(L, 5));
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_setfield(L, 3, name);
  lua_pushvalue(L, 2);
  lua_setfield(L, 4, name);
  lua_pushvalue(L, 2);
  return 1;
}

// luacs.job{ name = "...", on_inform = fn, on_event = fn,
// on_transfer_complete = fn }: registers a job, or replaces the job of that
// name where it stands (no functions: switched off).
int l_job(lua_State* L) {
  need_loading(L, "luacs.job");
  if (!lua_istable(L, 1))
    luaL_error(L, "luacs.job{ name = \"...\", on_inform = fn, ... } needs a table");
  lua_settop(L, 1);
  lua_getfield(L, 1, "name");
  size_t len = 0;
  const char* name = lua_tolstring(L, -1, &len);
  if (lua_type(L, -1) != LUA_TSTRING || len == 0 || len > 64)
    luaL_error(L, "luacs.job: a job needs a name (a string of 1 to 64 characters)");
  std::string job_name(name, len);
  lua_pop(L, 1);
  // A copy with the keys checked: a misspelt hook must not be ignored.
  lua_createtable(L, 0, 4);  // 2
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    bool hook = false;
    for (const char* h : kHookNames) hook |= key == h;
    if (!hook && key != "name") {
      std::string msg = "luacs.job " + job_name + ": unknown key '" + key + "'";
      std::string near = closest_hook(key);
      if (!near.empty()) msg += " (did you mean " + near + "?)";
      msg += "; a job has name, on_inform, on_event and on_transfer_complete";
      luaL_error(L, "%s", msg.c_str());
    }
    if (hook && !lua_isfunction(L, -1))
      luaL_error(L, "luacs.job %s: %s is a %s, not a function", job_name.c_str(), key.c_str(),
                 luaL_typename(L, -1));
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, 2);
  }
  registry_table(L, kJobsKey);  // 3
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, 3)), at = n + 1;
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, 3, i);
    lua_getfield(L, -1, "name");
    if (job_name == lua_tostring(L, -1)) at = i;
    lua_pop(L, 2);
  }
  lua_pushvalue(L, 2);
  lua_rawseti(L, 3, at);
  return 0;
}

}  // namespace

void open_jobs(lua_State* L) {
  lua_getglobal(L, "luacs");
  lua_pushcfunction(L, (safe<"luacs.job", l_job>));
  lua_setfield(L, -2, "job");
  lua_pushcfunction(L, (safe<"luacs.settings", l_settings>));
  lua_setfield(L, -2, "settings");
  lua_pop(L, 1);
  lua_newtable(L);
  lua_setglobal(L, "settings");
}

int finish_settings(lua_State* L) {
  registry_table(L, kSettingsKey);
  int sections = lua_gettop(L);
  lua_pushnil(L);
  if (!lua_next(L, sections)) return 0;  // no luacs.settings: `settings` is the policy's own
  lua_pop(L, 2);
  push_settings(L);
  int settings = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, sections)) {  // name section
    lua_pushvalue(L, -2);
    int t = lua_rawget(L, settings);  // name section current
    if (t == LUA_TTABLE && !lua_rawequal(L, -1, -2)) {
      // A later file replaced the whole section: its keys over the defaults.
      merge(L, -2, -1, true);
    } else if (t != LUA_TTABLE && t != LUA_TNIL) {
      luaL_error(L, "settings.%s is a %s, not a table", lua_tostring(L, -3), luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, settings);
  }
  lua_pop(L, 2);
  return 0;
}

void push_jobs(lua_State* L) {
  registry_table(L, kJobsKey);
}

}  // namespace luacs::lua
