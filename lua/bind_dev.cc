// `dev`, the handle on the device of a session (docs/policy-api.md §4): its
// fields, what is known of the device without asking the CPE (parameters,
// summary, tags), logging and faults; and the metatable that gathers every
// method, the RPCs of bind_dev_rpc.cc and bind_dev_files.cc included. On
// the worker thread of the session.
#include "lua/bind_dev.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/util/json.h"
#include "core/util/log.h"
#include "core/util/net.h"
#include "lua/binding.h"

namespace luacs::lua {
namespace {

constexpr const char* kDevMeta = "luacs.dev";

}  // namespace

Run::Impl* self(lua_State* L) {
  auto* h = static_cast<Handle*>(luaL_checkudata(L, 1, kDevMeta));
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

void check_options(lua_State* L, int idx, const std::string& what,
                   std::initializer_list<const char*> known) {
  if (!lua_istable(L, idx)) return;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      std::string_view key = lua_tostring(L, -1);
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    }
    std::string list;
    for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    size_t len = 0;
    const char* key = luaL_tolstring(L, -1, &len);  // a copy: the key itself stays as it is
    std::string shown = lua_type(L, -2) == LUA_TSTRING ? "'" + std::string(key, len) + "'"
                                                       : "[" + std::string(key, len) + "]";
    luaL_error(L, "%s: unknown option %s (known: %s)", what.c_str(), shown.c_str(), list.c_str());
  }
}

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

std::string opt_field(lua_State* L, int idx, const char* key, const std::string& dflt) {
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

namespace {

int64_t epoch(device::Time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void push_time(lua_State* L, device::Time t) {
  if (t == device::Time{})
    lua_pushnil(L);
  else
    lua_pushinteger(L, epoch(t));
}

// ---- what is known without asking the CPE ----

int dev_param(lua_State* L) {
  Run::Impl* r = self(L);
  const device::StoredParameter* p = r->view.known(luaL_checkstring(L, 2));
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
  Run::Impl* r = self(L);
  std::string prefix = luaL_optstring(L, 2, "");
  lua_newtable(L);
  r->view.each(prefix, true, [L](const std::string& name, const std::string& value) {
    lua_pushlstring(L, value.data(), value.size());
    lua_setfield(L, -2, name.c_str());
  });
  return 1;
}

// A summary field keeps its Lua type as the xsd type of its parameter:
// integer "int", float "double", boolean "boolean", anything else "string".
// nullptr for a value a summary cannot hold (a table, a function).
const char* summary_type(lua_State* L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
      return "boolean";
    case LUA_TNUMBER:
      return lua_isinteger(L, idx) ? "int" : "double";
    case LUA_TSTRING:
      return "string";
    default:
      return nullptr;
  }
}

// A stored summary field back as the Lua value it was written as.
void push_summary_value(lua_State* L, const device::StoredParameter& p) {
  const std::string& v = p.value;
  if (p.type == "boolean" && (v == "true" || v == "false")) {
    lua_pushboolean(L, v == "true");
    return;
  }
  if ((p.type == "int" || p.type == "unsignedInt" || p.type == "double") &&
      lua_stringtonumber(L, v.c_str()) == v.size() + 1)
    return;
  lua_pushlstring(L, v.data(), v.size());
}

int dev_summary(lua_State* L) {
  Run::Impl* r = self(L);
  static const std::string kPrefix = "Summary.";
  if (lua_isnoneornil(L, 2)) {
    // The stored fields, then this session's (an Inform never carries any):
    // a field set in this session replaces the stored one in the table.
    lua_createtable(L, 0, 8);
    r->view.each_stored(kPrefix, [L](const std::string& name, const device::StoredParameter& p) {
      lua_pushlstring(L, name.data() + kPrefix.size(), name.size() - kPrefix.size());
      push_summary_value(L, p);
      lua_rawset(L, -3);
    });
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
    const char* type = summary_type(L, -1);
    if (!type) luaL_error(L, "dev:summary: '%s' is a %s", key.c_str(), luaL_typename(L, -1));
    size_t len = 0;
    const char* v = luaL_tolstring(L, -1, &len);
    soap::ParameterValue p{kPrefix + key, std::string(v, std::min<size_t>(len, 4096)), type};
    lua_pop(L, 2);
    r->view.remember(std::move(p), now);
  }
  return 0;
}

// ---- tags ----

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string tag_arg(lua_State* L) {
  size_t len = 0;
  const char* t = luaL_checklstring(L, 2, &len);
  if (!valid_tag({t, len}))
    luaL_error(L, "'%s' is not a tag name (1..64 of A-Z a-z 0-9 _ . : -)", t);
  return {t, len};
}

int dev_tag(lua_State* L) {
  Run::Impl* r = self(L);
  r->view.tag(tag_arg(L));
  return 0;
}

int dev_untag(lua_State* L) {
  Run::Impl* r = self(L);
  r->view.untag(tag_arg(L));
  return 0;
}

int dev_has_tag(lua_State* L) {
  Run::Impl* r = self(L);
  lua_pushboolean(L, r->view.has_tag(tag_arg(L)));
  return 1;
}

int dev_tags(lua_State* L) {
  Run::Impl* r = self(L);
  auto t = r->view.tags();
  lua_createtable(L, static_cast<int>(t.size()), 0);
  lua_Integer i = 1;
  for (const auto& s : t) {
    lua_pushlstring(L, s.data(), s.size());
    lua_rawseti(L, -2, i++);
  }
  return 1;
}

// ---- logging and faults ----

int dev_log_at(lua_State* L, log::Level level) {
  Run::Impl* r = self(L);
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
  Run::Impl* r = self(L);
  std::string msg = caller_position(L) + ": " + joined_args(L, 2);
  nlohmann::json detail = {{"generation", r->st->generation()}};
  r->add_fault(msg, util::json_text(detail));
  return 0;
}

// ---- the handle ----

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
  Run::Impl* r = self(L);
  const soap::Inform& in = r->view.inform();
  auto str = [&](const std::string& s) {
    lua_pushlstring(L, s.data(), s.size());
    return 1;
  };
  if (key == "id") return str(r->device_id());
  if (key == "oui") return str(in.device_id.oui);
  if (key == "product_class") return str(in.device_id.product_class);
  if (key == "serial") return str(in.device_id.serial_number);
  if (key == "manufacturer") return str(in.device_id.manufacturer);
  if (key == "root") return str(r->view.root());
  if (key == "is_mikrotik") {
    std::string m = in.device_id.manufacturer;
    for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lua_pushboolean(L, m == "mikrotik");
    return 1;
  }
  if (key == "ip") return str(util::address_of(r->ctx.peer));
  const device::Device* d = r->view.stored();
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
  auto* h = static_cast<Handle*>(luaL_checkudata(L, 1, kDevMeta));
  std::string s = h->run ? "dev(" + h->run->device_id() + ")" : "dev(stale)";
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

const luaL_Reg kDevMethods[] = {
    {"param", safe<"dev:param", dev_param>},       {"params", safe<"dev:params", dev_params>},
    {"summary", safe<"dev:summary", dev_summary>}, {"tag", safe<"dev:tag", dev_tag>},
    {"untag", safe<"dev:untag", dev_untag>},       {"has_tag", safe<"dev:has_tag", dev_has_tag>},
    {"tags", safe<"dev:tags", dev_tags>},          {"log", safe<"dev:log", dev_log>},
    {"warn", safe<"dev:warn", dev_warn>},          {"error", safe<"dev:error", dev_error>},
    {"fault", safe<"dev:fault", dev_fault>},       {nullptr, nullptr},
};

const luaL_Reg kDevMetamethods[] = {
    {"__newindex", safe<"dev", dev_newindex>},
    {"__tostring", safe<"dev", dev_tostring>},
    {nullptr, nullptr},
};

}  // namespace

void open_dev(lua_State* L) {
  if (!luaL_newmetatable(L, kDevMeta)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, kDevMetamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, kDevMethods, 0);
  luaL_setfuncs(L, kDevRpcMethods, 0);
  luaL_setfuncs(L, kDevFileMethods, 0);
  lua_pushcclosure(L, safe<"dev", dev_index>, 1);  // methods first, then fields
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "dev");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

void push_dev(lua_State* L, Run::Impl& r) {
  if (r.dev_ref == LUA_NOREF) {
    r.dev = static_cast<Handle*>(lua_newuserdatauv(L, sizeof(Handle), 0));
    r.dev->run = &r;
    luaL_setmetatable(L, kDevMeta);
    lua_pushvalue(L, -1);
    r.dev_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, r.dev_ref);
}

}  // namespace luacs::lua
