// The sandbox's changes to Lua's standard libraries (lua/sandbox.h): bounded
// versions of the C functions that loop without the count hook ever
// running, and read-only library views. Runs on the thread that owns the
// Lua state.
#include "lua/sandbox.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lua/binding.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

// What one element read and written by a table function counts for, and
// the elements between two charges (each charge may look at the clock).
constexpr uint64_t kElementWork = 8;
constexpr unsigned kElementsPerCharge = 256;
// What a conversion of string.format counts for, and a digit of a float
// one (glibc prints %.99f of 1e308 in ~9 µs: 409 digits).
constexpr uint64_t kFormatWork = 8;
constexpr uint64_t kDigitWork = 8;
// What a byte of an os.date format counts for (strftime is called once per
// conversion: ~150 ns for %c).
constexpr uint64_t kDateWork = 8;

// Work done element by element, charged every kElementsPerCharge.
class Work {
 public:
  explicit Work(lua_State* L) : L_(L) {}
  void step() {
    if (++n_ == kElementsPerCharge) {
      State::charge(L_, n_ * kElementWork);
      n_ = 0;
    }
  }
  void flush() {
    if (n_) State::charge(L_, n_ * kElementWork);
    n_ = 0;
  }

 private:
  lua_State* L_;
  unsigned n_ = 0;
};

// The standard function a replacement stands for (upvalue 1, a C function
// without upvalues of its own), run in the replacement's frame rather than
// called: its errors then name the function and the policy's line as they
// would without the replacement.
int call_original(lua_State* L) {
  return lua_tocfunction(L, lua_upvalueindex(1))(L);
}

// ---- table ----
//
// Lua's table functions loop over lua_geti/lua_seti in C. With __len,
// __index or __newindex metamethods that are C functions (rawlen,
// rawequal) no Lua instruction runs and nothing is allocated: table.move
// ({}, 1, 2^40, 2) or table.insert on a table whose __len says 2^40 held
// the worker for good.

enum { kRead = 1, kWrite = 2, kLen = 4 };

// The table argument check of Lua's table library: a table, or a value
// whose metatable has the metamethods the function uses.
void check_table(lua_State* L, int arg, int what) {
  if (lua_type(L, arg) == LUA_TTABLE) return;
  int n = 1;
  auto has = [&](const char* key) {
    lua_pushstring(L, key);
    return lua_rawget(L, -(++n)) != LUA_TNIL;
  };
  if (lua_getmetatable(L, arg) && (!(what & kRead) || has("__index")) &&
      (!(what & kWrite) || has("__newindex")) && (!(what & kLen) || has("__len"))) {
    lua_pop(L, n);
  } else {
    luaL_checktype(L, arg, LUA_TTABLE);
  }
}

lua_Integer length(lua_State* L, int arg, int what) {
  check_table(L, arg, what | kLen);
  return luaL_len(L, arg);
}

int t_insert(lua_State* L) {
  const lua_Integer e = static_cast<lua_Integer>(
      static_cast<lua_Unsigned>(length(L, 1, kRead | kWrite)) + 1);  // first empty element
  lua_Integer pos = e;
  switch (lua_gettop(L)) {
    case 2:
      break;
    case 3: {
      pos = luaL_checkinteger(L, 2);
      luaL_argcheck(L, static_cast<lua_Unsigned>(pos) - 1u < static_cast<lua_Unsigned>(e), 2,
                    "position out of bounds");
      Work w(L);
      for (lua_Integer i = e; i > pos; i--) {
        w.step();
        lua_geti(L, 1, i - 1);
        lua_seti(L, 1, i);
      }
      w.flush();
      break;
    }
    default:
      return luaL_error(L, "wrong number of arguments to 'insert'");
  }
  lua_seti(L, 1, pos);
  return 0;
}

int t_remove(lua_State* L) {
  const lua_Integer size = length(L, 1, kRead | kWrite);
  lua_Integer pos = luaL_optinteger(L, 2, size);
  if (pos != size)
    luaL_argcheck(L, static_cast<lua_Unsigned>(pos) - 1u <= static_cast<lua_Unsigned>(size), 2,
                  "position out of bounds");
  lua_geti(L, 1, pos);
  Work w(L);
  for (; pos < size; pos++) {
    w.step();
    lua_geti(L, 1, pos + 1);
    lua_seti(L, 1, pos);
  }
  w.flush();
  lua_pushnil(L);
  lua_seti(L, 1, pos);
  return 1;
}

// table.move reads its range from its arguments: charged up front, then
// Lua's own.
int t_move(lua_State* L) {
  const lua_Integer f = luaL_checkinteger(L, 2);
  const lua_Integer e = luaL_checkinteger(L, 3);
  if (e >= f) {
    // Wraps to 0 for a range Lua refuses ("too many elements to move").
    const lua_Unsigned n = static_cast<lua_Unsigned>(e) - static_cast<lua_Unsigned>(f) + 1;
    State::charge(L, std::min<lua_Unsigned>(n, lua_Unsigned{1} << 40) * kElementWork);
  }
  return call_original(L);
}

void add_field(lua_State* L, luaL_Buffer* b, lua_Integer i) {
  lua_geti(L, 1, i);
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid value (at index %I) in table for 'concat'", static_cast<LUAI_UACINT>(i));
  luaL_addvalue(b);
}

int t_concat(lua_State* L) {
  lua_Integer last = length(L, 1, kRead);
  size_t lsep = 0;
  const char* sep = luaL_optlstring(L, 2, "", &lsep);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  last = luaL_optinteger(L, 4, last);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Work w(L);
  for (; i < last; i++) {
    w.step();
    add_field(L, &b, i);
    luaL_addlstring(&b, sep, lsep);
  }
  if (i == last) add_field(L, &b, i);
  w.flush();
  luaL_pushresult(&b);
  return 1;
}

// Lua's sort (n·log n comparisons, no hook unless the comparison is Lua
// code) charged up front. A __len metamethod could give the charge one
// length and the sort another: such a table is refused.
int t_sort(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
      return luaL_error(L, "table.sort: a table with a __len metamethod cannot be sorted here");
    const lua_Unsigned n = lua_rawlen(L, 1);
    if (n > 1) {
      const auto log2n = static_cast<uint64_t>(std::ceil(std::log2(static_cast<double>(n))));
      State::charge(L, std::min<lua_Unsigned>(n, lua_Unsigned{1} << 40) * log2n * kElementWork);
    }
  }
  return call_original(L);
}

// ---- string ----

// Lua's string.rep("", n) (or rep("", n, "")) copies nothing n times: 2^40
// turns of an empty loop.
int s_rep(lua_State* L) {
  size_t l = 0, lsep = 0;
  luaL_checklstring(L, 1, &l);
  const lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || l + lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  // Otherwise the result is allocated first: bounded by the memory cap.
  return call_original(L);
}

// string.format charged by its conversions, a float one by the digits it
// may print (precision, and the integer digits of %f).
int s_format(lua_State* L) {
  size_t len = 0;
  const char* f = luaL_checklstring(L, 1, &len);
  const char* end = f + len;
  uint64_t work = 0;
  const int top = lua_gettop(L);
  int arg = 1;
  for (const char* p = f; p < end; ++p) {
    if (*p != '%') continue;
    if (++p < end && *p == '%') continue;
    while (p < end && std::strchr("-+ #0", *p) && *p) ++p;
    while (p < end && *p >= '0' && *p <= '9') ++p;
    int precision = 6;
    if (p < end && *p == '.') {
      precision = 0;
      while (++p < end && *p >= '0' && *p <= '9')
        precision = std::min(precision * 10 + *p - '0', 999);
    }
    if (p >= end) break;
    ++arg;
    work += kFormatWork;
    if (std::strchr("aAeEgGfF", *p) && *p) {
      double digits = precision;
      if ((*p == 'f' || *p == 'F') && arg <= top && lua_type(L, arg) == LUA_TNUMBER) {
        const double x = std::fabs(lua_tonumber(L, arg));
        if (x >= 10 && std::isfinite(x)) digits += std::log10(x);
      }
      work += static_cast<uint64_t>(digits) * kDigitWork;
    }
  }
  State::charge(L, work);
  return call_original(L);
}

// ---- os ----

int os_date(lua_State* L) {
  size_t len = 2;  // "%c"
  if (lua_type(L, 1) == LUA_TSTRING) lua_tolstring(L, 1, &len);
  State::charge(L, len * kDateWork);
  return call_original(L);
}

// Puts `f`, wrapping the library's own function `name` (an upvalue), in
// place of it in the table on top of the stack.
void replace(lua_State* L, const char* name, lua_CFunction f) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, f, 1);
  lua_setfield(L, -2, name);
}

// ---- read-only views ----

// Marks the metatable of a view (its address: no Lua value can be it).
const char kViewKey = 0;

bool is_view(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  const bool view = lua_rawgetp(L, -1, &kViewKey) != LUA_TNIL;
  lua_pop(L, 2);
  return view;
}

// __newindex of a view (upvalues: the library, its name).
int view_newindex(lua_State* L) {
  if (!State::of(L)->loading)
    return luaL_error(L,
                      "%s is read-only: a hook cannot change a library (it is shared by every "
                      "hook of the worker); do it at the top level of a policy file",
                      lua_tostring(L, lua_upvalueindex(2)));
  lua_settop(L, 3);
  lua_rawset(L, lua_upvalueindex(1));
  return 0;
}

// The iterator of pairs() over a view, `next` on the library (upvalue 1):
// the library itself never reaches the policy.
int view_next(lua_State* L) {
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 2);
  if (lua_next(L, -2)) return 2;
  lua_pushnil(L);
  return 1;
}

int view_pairs(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int l_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (is_view(L, 1)) return luaL_error(L, "rawset: a library is read-only");
  return call_original(L);
}

}  // namespace

void open_bounded(lua_State* L) {
  lua_getglobal(L, LUA_TABLIBNAME);
  replace(L, "insert", safe<"table.insert", t_insert>);
  replace(L, "remove", safe<"table.remove", t_remove>);
  replace(L, "move", safe<"table.move", t_move>);
  replace(L, "concat", safe<"table.concat", t_concat>);
  replace(L, "sort", safe<"table.sort", t_sort>);
  lua_pop(L, 1);
  lua_getglobal(L, LUA_STRLIBNAME);
  replace(L, "rep", safe<"string.rep", s_rep>);
  replace(L, "format", safe<"string.format", s_format>);
  lua_pop(L, 1);
  lua_getglobal(L, LUA_OSLIBNAME);
  replace(L, "date", safe<"os.date", os_date>);
  lua_pop(L, 1);
}

void make_library_view(lua_State* L, const char* name) {
  lua_getglobal(L, name);
  const int lib = lua_gettop(L);
  lua_newtable(L);  // the view
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, lib);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, lib);
  lua_pushstring(L, name);
  lua_pushcclosure(L, safe<"library", view_newindex>, 2);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, lib);
  lua_pushcclosure(L, view_next, 1);
  lua_pushcclosure(L, view_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pushboolean(L, 1);
  lua_rawsetp(L, -2, &kViewKey);
  lua_setmetatable(L, -2);
  lua_setglobal(L, name);
  lua_pop(L, 1);
}

void protect_shared(lua_State* L) {
  lua_getglobal(L, "rawset");
  lua_pushcclosure(L, safe<"rawset", l_rawset>, 1);
  lua_setglobal(L, "rawset");
  // getmetatable("").__index = ... would change every string of every
  // later hook; the string library itself is reached through the view.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
}

}  // namespace luacs::lua
