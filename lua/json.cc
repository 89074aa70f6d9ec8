// JSON text <-> Lua values (lua/json.h). Worker thread.
#include "lua/json.h"

#include <cstdint>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/util/json.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

constexpr int kMaxJsonDepth = 64;

// JSON text straight into Lua values, without a document in between: the
// values are allocated by Lua (under the state's memory cap) as they are
// read. A document of "[0,0,0,...]" would hold 16 bytes and more per byte
// of text outside the cap.
class LuaSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit LuaSax(lua_State* L) : L_(L) {}

  bool null() override {
    return value([&] { lua_pushnil(L_); });
  }
  bool boolean(bool v) override {
    return value([&] { lua_pushboolean(L_, v); });
  }
  bool number_integer(number_integer_t v) override {
    return value([&] { lua_pushinteger(L_, v); });
  }
  bool number_unsigned(number_unsigned_t v) override {
    return value([&] { lua_pushinteger(L_, static_cast<lua_Integer>(v)); });
  }
  bool number_float(number_float_t v, const string_t&) override {
    return value([&] { lua_pushnumber(L_, v); });
  }
  bool string(string_t& v) override {
    return value([&] { lua_pushlstring(L_, v.data(), v.size()); });
  }
  bool binary(binary_t&) override {
    return value([&] { lua_pushnil(L_); });
  }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    lua_pushlstring(L_, k.data(), k.size());
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw std::runtime_error(e.what());
  }

 private:
  // A value pushed by `push`, stored into the open container if any.
  template <typename Push>
  bool value(Push push) {
    push();
    store();
    return true;
  }
  void store() {
    if (open_.empty()) return;
    if (open_.back() > 0) {
      lua_rawseti(L_, -2, open_.back()++);
    } else {
      lua_rawset(L_, -3);  // table key value
    }
  }
  bool open(bool array) {
    if (open_.size() >= kMaxJsonDepth) throw std::runtime_error("nested too deeply");
    luaL_checkstack(L_, 4, "json");
    lua_newtable(L_);
    open_.push_back(array ? 1 : 0);
    return true;
  }
  bool close() {
    open_.pop_back();
    store();
    return true;
  }

  lua_State* L_;
  std::vector<lua_Integer> open_;  // per open container: next index (array) or 0 (object)
};

// What encoding may still cost: estimated bytes of the document (the
// state's memory limit at most, the cap the document's Lua values were
// under) and, in a hook, the work charged to its budget. A table that
// holds the same table twice is encoded twice: {t, t} nested 60 deep is
// 2^60 values.
struct Encoding {
  lua_State* L;
  size_t bytes_left;
  bool charge;
  unsigned steps = 0;

  void spend(size_t bytes) {
    if (bytes > bytes_left)
      throw std::runtime_error("the document would be larger than the policy memory limit");
    bytes_left -= bytes;
    if (charge && ++steps == 256) {
      steps = 0;
      State::charge(L, 256 * 16);
    }
  }
};

nlohmann::json json_of(Encoding& enc, int idx, int depth) {
  if (depth > kMaxJsonDepth) throw std::runtime_error("nested too deeply (or a cycle)");
  lua_State* L = enc.L;
  enc.spend(16);
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
      enc.spend(len);
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
          a.push_back(json_of(enc, -1, depth + 1));
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
        enc.spend(key.size());
        o[key] = json_of(enc, -1, depth + 1);
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
  LuaSax sax(L);
  const int top = lua_gettop(L);
  nlohmann::json::sax_parse(json.begin(), json.end(), &sax, nlohmann::json::input_format_t::json,
                            true, false);
  if (lua_gettop(L) != top + 1) throw std::runtime_error("no JSON value");
}

std::string to_json(lua_State* L, int index, bool charge) {
  Encoding enc{L, State::of(L)->limits().memory_limit, charge};
  return util::json_text(json_of(enc, index, 0));
}

}  // namespace luacs::lua
