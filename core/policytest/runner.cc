#include "core/policytest/runner.h"

#include <lua.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include "core/files/policy_files.h"
#include "core/policytest/sim_session.h"
#include "core/util/log.h"

namespace luacs::policytest {
namespace fs = std::filesystem;

namespace {

constexpr const char* kCpeMeta = "luacs.test.cpe";
constexpr const char* kRunKey = "luacs.test.run";  // registry: the FileRun*

// What one test file's Lua state can reach.
struct FileRun {
  const TestOptions* opts = nullptr;
  std::string file_dir;  // the test file's folder (relative model paths)
  session::Services* services = nullptr;
  std::set<std::string>* disk_files = nullptr;
  std::vector<std::pair<std::string, int>> tests;  // name, registry ref of the function
};

FileRun& run_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kRunKey);
  auto* r = static_cast<FileRun*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *r;
}

// Raises "file:line: message" at the test's line (level 1: the Lua
// function that called the C function raising).
[[noreturn]] void fail(lua_State* L, const std::string& msg) {
  luaL_where(L, 1);
  lua_pushlstring(L, msg.data(), msg.size());
  lua_concat(L, 2);
  lua_error(L);
  throw std::logic_error("unreachable");  // lua_error does not return
}

// A value as a test failure shows it.
std::string show(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) return "\"" + std::string(lua_tostring(L, idx)) + "\"";
  if (lua_type(L, idx) == LUA_TTABLE) {
    std::string out = "{";
    const lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n && i <= 20; ++i) {
      lua_rawgeti(L, idx, i);
      if (i > 1) out += ", ";
      out += show(L, -1);
      lua_pop(L, 1);
    }
    if (n > 20) out += ", ...";
    if (n == 0) {
      lua_pushnil(L);
      bool first = true;
      while (lua_next(L, idx)) {
        if (!first) out += ", ";
        first = false;
        lua_pushvalue(L, -2);
        out += std::string(luaL_tolstring(L, -1, nullptr)) + " = ";
        lua_pop(L, 2);
        out += show(L, -1);
        lua_pop(L, 1);
      }
    }
    return out + "}";
  }
  std::string s = luaL_tolstring(L, idx, nullptr);
  lua_pop(L, 1);
  return s;
}

// Sequences compare element by element; everything else with ==.
bool same(lua_State* L, int a, int b) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  if (lua_istable(L, a) && lua_istable(L, b)) {
    const lua_Integer n = luaL_len(L, a);
    if (n != luaL_len(L, b)) return false;
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, a, i);
      lua_rawgeti(L, b, i);
      const bool eq = same(L, -2, -1);
      lua_pop(L, 2);
      if (!eq) return false;
    }
    return true;
  }
  return lua_compare(L, a, b, LUA_OPEQ) != 0;
}

// The list (or string) at idx holds `v`.
bool holds(lua_State* L, int list, int v) {
  list = lua_absindex(L, list);
  v = lua_absindex(L, v);
  if (lua_type(L, list) == LUA_TSTRING && lua_type(L, v) == LUA_TSTRING)
    return std::string(lua_tostring(L, list)).find(lua_tostring(L, v)) != std::string::npos;
  luaL_checktype(L, list, LUA_TTABLE);
  const lua_Integer n = luaL_len(L, list);
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, list, i);
    const bool eq = same(L, -1, v);
    lua_pop(L, 1);
    if (eq) return true;
  }
  return false;
}

std::string message_arg(lua_State* L, int idx) {
  return lua_isstring(L, idx) ? std::string(": ") + lua_tostring(L, idx) : std::string();
}

int l_expect(lua_State* L) {
  if (!lua_toboolean(L, 1)) fail(L, "expectation failed" + message_arg(L, 2));
  return 0;
}

int l_expect_eq(lua_State* L) {
  luaL_checkany(L, 2);
  if (!same(L, 1, 2)) fail(L, "expected " + show(L, 2) + ", got " + show(L, 1) + message_arg(L, 3));
  return 0;
}

int l_expect_has(lua_State* L) {
  luaL_checkany(L, 2);
  if (!holds(L, 1, 2)) fail(L, "expected " + show(L, 2) + " in " + show(L, 1) + message_arg(L, 3));
  return 0;
}

int l_expect_not_has(lua_State* L) {
  luaL_checkany(L, 2);
  if (holds(L, 1, 2))
    fail(L, "expected no " + show(L, 2) + " in " + show(L, 1) + message_arg(L, 3));
  return 0;
}

int l_test(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  run_of(L).tests.emplace_back(name, luaL_ref(L, LUA_REGISTRYINDEX));
  return 0;
}

// files{ "routeros-7.16-arm.npk", ... }: what [files] dir holds for the
// policy (dev:upgrade, dev:file_url).
int l_files(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, 1, i);
    run_of(L).disk_files->insert(luaL_checkstring(L, -1));
    lua_pop(L, 1);
  }
  return 0;
}

// ---- simulated CPEs ---------------------------------------------------------

// The CSV of a model: a path (relative to the test file), or the one file
// of the models folder whose name starts with `name`.
std::string model_path(lua_State* L, const std::string& name) {
  const FileRun& r = run_of(L);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".csv") == 0) {
    fs::path p(name);
    return (p.is_absolute() ? p : fs::path(r.file_dir) / p).string();
  }
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(r.opts->models_dir, ec)) {
    const std::string f = e.path().filename().string();
    if (e.path().extension() == ".csv" && f.rfind(name, 0) == 0) found.push_back(e.path());
  }
  if (found.size() != 1)
    fail(L, "cpe: model '" + name + "': " +
                (found.empty()
                     ? "no " + name + "*.csv in " + r.opts->models_dir
                     : std::to_string(found.size()) + " files match in " + r.opts->models_dir));
  return found[0];
}

SimDevice& cpe_of(lua_State* L) {
  return **static_cast<std::unique_ptr<SimDevice>*>(luaL_checkudata(L, 1, kCpeMeta));
}

int cpe_gc(lua_State* L) {
  static_cast<std::unique_ptr<SimDevice>*>(luaL_checkudata(L, 1, kCpeMeta))->~unique_ptr();
  return 0;
}

// cpe{ model = "tr181" | "my-export.csv", serial = "...", params = {[name] = value} }
int l_cpe(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "model");
  const std::string model = luaL_checkstring(L, -1);
  lua_pop(L, 1);
  std::string path = model_path(L, model);
  std::unique_ptr<SimDevice> d;
  std::string error;
  try {
    d = std::make_unique<SimDevice>(SimDevice{sim::DataModel::load(path), {}, {}, nullptr});
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!d) fail(L, "cpe: " + error);
  lua_getfield(L, 1, "params");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const std::string name = luaL_checkstring(L, -2);
      const std::string value = luaL_tolstring(L, -1, nullptr);
      d->model.set(name, value);
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "serial");
  d->serial = lua_isstring(L, -1) ? lua_tostring(L, -1) : d->model.device_id().serial_number;
  lua_pop(L, 1);
  auto* ud = static_cast<std::unique_ptr<SimDevice>*>(lua_newuserdatauv(L, sizeof(d), 0));
  new (ud) std::unique_ptr<SimDevice>(std::move(d));
  luaL_setmetatable(L, kCpeMeta);
  return 1;
}

void push_strings(lua_State* L, const std::vector<std::string>& v) {
  lua_createtable(L, static_cast<int>(v.size()), 0);
  for (size_t i = 0; i < v.size(); ++i) {
    lua_pushlstring(L, v[i].data(), v[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
}

void set_string(lua_State* L, const char* key, const std::string& v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, key);
}

// An ACS request as a table: its method and what a test asserts on.
void push_request(lua_State* L, const soap::Body& b) {
  lua_newtable(L);
  set_string(L, "method", std::string(soap::method_name(b)));
  if (auto* g = std::get_if<soap::GetParameterValues>(&b)) {
    push_strings(L, g->names);
    lua_setfield(L, -2, "names");
  } else if (auto* s = std::get_if<soap::SetParameterValues>(&b)) {
    lua_newtable(L);
    for (const auto& p : s->parameters) set_string(L, p.name.c_str(), p.value);
    lua_setfield(L, -2, "values");
    set_string(L, "parameter_key", s->parameter_key);
  } else if (auto* dl = std::get_if<soap::Download>(&b)) {
    set_string(L, "url", dl->url);
    set_string(L, "file_type", dl->file_type);
    set_string(L, "command_key", dl->command_key);
    set_string(L, "target_file_name", dl->target_file_name);
  } else if (auto* r = std::get_if<soap::Reboot>(&b)) {
    set_string(L, "command_key", r->command_key);
  } else if (auto* a = std::get_if<soap::AddObject>(&b)) {
    set_string(L, "object", a->object_name);
  } else if (auto* del = std::get_if<soap::DeleteObject>(&b)) {
    set_string(L, "object", del->object_name);
  } else if (auto* n = std::get_if<soap::GetParameterNames>(&b)) {
    set_string(L, "path", n->path);
  }
}

// d:session{ events = {"0 BOOTSTRAP", ...}, tasks = {{"adopt", '{"json":1}'}},
//            transfers = {{command_key = ..., fault_code = ...}},
//            faults = {[n] = code}, silent_after = n }
int cpe_session(lua_State* L) {
  SimDevice& d = cpe_of(L);
  SimOptions o;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "events");
    if (lua_istable(L, -1)) {
      o.events.clear();
      for (lua_Integer i = 1; i <= luaL_len(L, -1); ++i) {
        lua_rawgeti(L, -1, i);
        std::string e = luaL_checkstring(L, -1);
        lua_pop(L, 1);
        const auto colon = e.find(':');  // "M Download:key" carries its CommandKey
        if (colon == std::string::npos)
          o.events.push_back({e, ""});
        else
          o.events.push_back({e.substr(0, colon), e.substr(colon + 1)});
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "tasks");
    if (lua_istable(L, -1)) {
      for (lua_Integer i = 1; i <= luaL_len(L, -1); ++i) {
        lua_rawgeti(L, -1, i);
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        o.tasks.emplace_back(luaL_checkstring(L, -2),
                             lua_isstring(L, -1) ? lua_tostring(L, -1) : "{}");
        lua_pop(L, 3);
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "transfers");
    if (lua_istable(L, -1)) {
      for (lua_Integer i = 1; i <= luaL_len(L, -1); ++i) {
        lua_rawgeti(L, -1, i);
        lua::TransferInfo t;
        lua_getfield(L, -1, "command_key");
        t.command_key = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
        lua_getfield(L, -2, "fault_code");
        t.fault_code = static_cast<uint32_t>(lua_tointeger(L, -1));
        lua_getfield(L, -3, "fault_string");
        t.fault_string = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
        lua_pop(L, 4);
        o.transfers.push_back(std::move(t));
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "faults");
    if (lua_istable(L, -1)) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        o.fault_at[static_cast<size_t>(luaL_checkinteger(L, -2) - 1)] =
            static_cast<uint32_t>(luaL_checkinteger(L, -1));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
    lua_getfield(L, 2, "silent_after");
    if (lua_isinteger(L, -1)) o.stop_after = static_cast<size_t>(lua_tointeger(L, -1));
    lua_pop(L, 1);
  }

  std::optional<SimLog> log;
  std::string error;
  try {
    log = run_session(*run_of(L).services, d, o);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!log) fail(L, "session: " + error);

  lua_newtable(L);
  push_strings(L, log->methods);
  lua_setfield(L, -2, "rpcs");
  lua_createtable(L, static_cast<int>(log->requests.size()), 0);
  for (size_t i = 0; i < log->requests.size(); ++i) {
    push_request(L, log->requests[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "requests");
  push_strings(L, log->result.tags_added);
  lua_setfield(L, -2, "tags_added");
  push_strings(L, log->result.tags_removed);
  lua_setfield(L, -2, "tags_removed");
  lua_createtable(L, static_cast<int>(log->result.faults.size()), 0);
  for (size_t i = 0; i < log->result.faults.size(); ++i) {
    const auto& f = log->result.faults[i];
    lua_newtable(L);
    set_string(L, "source", f.source);
    lua_pushinteger(L, f.code);
    lua_setfield(L, -2, "code");
    set_string(L, "message", f.message);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "faults");
  lua_newtable(L);
  for (const auto& [p, t] : log->result.parameters)
    if (p.name.rfind("Summary.", 0) == 0) set_string(L, p.name.c_str() + 8, p.value);
  lua_setfield(L, -2, "summary");
  lua_createtable(L, static_cast<int>(log->task_results.size()), 0);
  for (size_t i = 0; i < log->task_results.size(); ++i) {
    lua_newtable(L);
    lua_pushboolean(L, log->task_results[i].first);
    lua_setfield(L, -2, "ok");
    set_string(L, "result", log->task_results[i].second);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "tasks");
  set_string(L, "result", std::string(cwmp::to_string(log->end)));
  lua_pushinteger(L, log->final_status);
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, static_cast<lua_Integer>(log->generation));
  lua_setfield(L, -2, "generation");
  return 1;
}

// d:tags(): the stored tags, sorted.
int cpe_tags(lua_State* L) {
  SimDevice& d = cpe_of(L);
  std::vector<std::string> tags;
  if (d.stored) tags.assign(d.stored->tags.begin(), d.stored->tags.end());
  push_strings(L, tags);
  return 1;
}

// d:stored(name): a stored parameter's value (nil when none).
int cpe_stored(lua_State* L) {
  SimDevice& d = cpe_of(L);
  const char* name = luaL_checkstring(L, 2);
  if (!d.stored) return 0;
  auto it = d.stored->parameters.find(name);
  if (it == d.stored->parameters.end()) return 0;
  lua_pushlstring(L, it->second.value.data(), it->second.value.size());
  return 1;
}

// d:summary(key): the stored summary field (nil when none).
int cpe_summary(lua_State* L) {
  lua_pushfstring(L, "Summary.%s", luaL_checkstring(L, 2));
  lua_replace(L, 2);
  return cpe_stored(L);
}

// d:tag(t) / d:untag(t): what an operator does through the API between
// two sessions.
int cpe_operator_tag(lua_State* L, bool add) {
  SimDevice& d = cpe_of(L);
  const char* tag = luaL_checkstring(L, 2);
  if (!d.stored) fail(L, "tag a device after its first session");
  auto& tags = d.edit().tags;
  if (add)
    tags.insert(tag);
  else
    tags.erase(tag);
  return 0;
}
int cpe_tag(lua_State* L) {
  return cpe_operator_tag(L, true);
}
int cpe_untag(lua_State* L) {
  return cpe_operator_tag(L, false);
}

// d:set(name, value): the device itself changes (a new firmware, a reset).
int cpe_set(lua_State* L) {
  SimDevice& d = cpe_of(L);
  const std::string name = luaL_checkstring(L, 2);
  const std::string value = luaL_tolstring(L, 3, nullptr);
  d.model.set(name, value);
  return 0;
}

void open_test_api(lua_State* L) {
  static const luaL_Reg cpe_methods[] = {{"session", cpe_session}, {"tags", cpe_tags},
                                         {"stored", cpe_stored},   {"summary", cpe_summary},
                                         {"tag", cpe_tag},         {"untag", cpe_untag},
                                         {"set", cpe_set},         {nullptr, nullptr}};
  luaL_newmetatable(L, kCpeMeta);
  luaL_newlib(L, cpe_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, cpe_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg globals[] = {{"test", l_test},
                                     {"cpe", l_cpe},
                                     {"files", l_files},
                                     {"expect", l_expect},
                                     {"expect_eq", l_expect_eq},
                                     {"expect_has", l_expect_has},
                                     {"expect_not_has", l_expect_not_has},
                                     {nullptr, nullptr}};
  lua_pushglobaltable(L);
  luaL_setfuncs(L, globals, 0);
  lua_pop(L, 1);
}

// A Lua state for one test file: the safe standard libraries and the test
// API. Tests are the operator's own code, but they need nothing more.
std::unique_ptr<lua_State, decltype(&lua_close)> new_test_state() {
  std::unique_ptr<lua_State, decltype(&lua_close)> L(luaL_newstate(), &lua_close);
  if (!L) throw std::runtime_error("cannot create a Lua state");
  const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
                           {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                           {LUA_UTF8LIBNAME, luaopen_utf8}, {nullptr, nullptr}};
  for (const luaL_Reg* lib = libs; lib->func; ++lib) {
    luaL_requiref(L.get(), lib->name, lib->func, 1);
    lua_pop(L.get(), 1);
  }
  for (const char* unsafe : {"dofile", "loadfile"}) {
    lua_pushnil(L.get());
    lua_setglobal(L.get(), unsafe);
  }
  open_test_api(L.get());
  return L;
}

int traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

// The first line of an error (its traceback follows on the next lines).
std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

TestSummary run_tests(const TestOptions& opts, FILE* out) {
  TestSummary sum;
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(opts.dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 9 && name.compare(name.size() - 9, 9, "_test.lua") == 0)
      files.push_back(e.path());
  }
  if (ec) {
    sum.error = opts.dir + ": " + ec.message();
    return sum;
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    sum.error = opts.dir + ": no *_test.lua files";
    return sum;
  }

  // The policy under test, loaded once as luacs would load it; every test
  // file's devices run their sessions against it.
  lua::PolicyManager manager(opts.dir, opts.limits);
  auto loaded = manager.reload();
  if (!loaded.ok) {
    sum.error = "the policy does not load: " + loaded.error;
    return sum;
  }
  std::set<std::string> disk_files;
  lua::FileServices services;
  files::serve_mikrotik_files(services,
                              [](files::mikrotik::Generated g) { return "/test/" + g.name; });
  services.path_of = [&disk_files](std::string_view name) {
    return disk_files.count(std::string(name)) ? "/disk/" + std::string(name) : std::string();
  };
  services.base_url = [](std::string_view) { return std::string("http://acs.test:7567"); };
  lua::Engine engine(manager, services, 0);
  session::Services session_services;
  session_services.engine = &engine;

  for (const auto& path : files) {
    ++sum.files;
    disk_files.clear();
    const std::string shown = path.string();
    std::fprintf(out, "%s\n", shown.c_str());
    FileRun run;
    run.opts = &opts;
    run.file_dir = path.parent_path().string();
    run.services = &session_services;
    run.disk_files = &disk_files;
    auto L = new_test_state();
    lua_pushlightuserdata(L.get(), &run);
    lua_setfield(L.get(), LUA_REGISTRYINDEX, kRunKey);
    lua_pushcfunction(L.get(), traceback);
    const int handler = lua_gettop(L.get());
    if (luaL_loadfilex(L.get(), shown.c_str(), "t") != LUA_OK ||
        lua_pcall(L.get(), 0, 0, handler) != LUA_OK) {
      std::fprintf(out, "  FAIL  (the file)\n        %s\n",
                   first_line(lua_tostring(L.get(), -1)).c_str());
      ++sum.failed;
      continue;
    }
    if (run.tests.empty()) {
      std::fprintf(out, "  FAIL  (the file)\n        %s: defines no test(...)\n", shown.c_str());
      ++sum.failed;
      continue;
    }
    for (const auto& [name, ref] : run.tests) {
      lua_rawgeti(L.get(), LUA_REGISTRYINDEX, ref);
      if (lua_pcall(L.get(), 0, 0, handler) == LUA_OK) {
        std::fprintf(out, "  ok    %s\n", name.c_str());
        ++sum.passed;
      } else {
        std::fprintf(out, "  FAIL  %s\n        %s\n", name.c_str(),
                     first_line(lua_tostring(L.get(), -1)).c_str());
        lua_pop(L.get(), 1);
        ++sum.failed;
      }
      lua_gc(L.get(), LUA_GCCOLLECT);
    }
  }
  return sum;
}

}  // namespace luacs::policytest
