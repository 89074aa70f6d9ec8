// string.find, match, gmatch and gsub for the sandbox (lua/sandbox.h): Lua
// 5.4's patterns, with the same results and errors, matched by a
// backtracking matcher that charges its steps to the hook's budget.
//
// Lua's own matcher never consults the count hook: find(("a"):rep(1e5),
// ".-b") takes seconds and ".-.-.-b" hours, all inside one C call that no
// budget stops. Here every step (a pattern item tried at a position, a
// character scanned by %b or a repetition, 256 bytes compared) counts as
// an instruction; State::charge stops the call past the instruction or
// time budget.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <new>

#include "lua/binding.h"
#include "lua/sandbox.h"
#include "lua/state.h"

namespace luacs::lua {
namespace {

constexpr int kMaxCaptures = 32;  // LUA_MAXCAPTURES
constexpr int kMaxDepth = 200;    // Lua's MAXCCALLS: nesting of the matcher
constexpr ptrdiff_t kUnfinished = -1;
constexpr ptrdiff_t kPosition = -2;
constexpr char kEsc = '%';
constexpr unsigned kStepsPerCharge = 1024;
constexpr size_t kCompareChunk = 256;  // bytes compared per step

unsigned char uc(char c) {
  return static_cast<unsigned char>(c);
}

// Whether `c` is in the class `cl` (the letter after '%').
bool in_class(int c, int cl) {
  bool in;
  switch (std::tolower(cl)) {
    case 'a':
      in = std::isalpha(c);
      break;
    case 'c':
      in = std::iscntrl(c);
      break;
    case 'd':
      in = std::isdigit(c);
      break;
    case 'g':
      in = std::isgraph(c);
      break;
    case 'l':
      in = std::islower(c);
      break;
    case 'p':
      in = std::ispunct(c);
      break;
    case 's':
      in = std::isspace(c);
      break;
    case 'u':
      in = std::isupper(c);
      break;
    case 'w':
      in = std::isalnum(c);
      break;
    case 'x':
      in = std::isxdigit(c);
      break;
    case 'z':
      in = c == 0;
      break;  // deprecated, still in Lua 5.4
    default:
      return cl == c;  // %. %% %( ...: the character itself
  }
  return std::isupper(cl) ? !in : in;
}

// Whether `c` is in the set [p .. last], p at '[' and last at its ']'.
bool in_set(int c, const char* p, const char* last) {
  bool want = true;
  if (p[1] == '^') {
    want = false;
    ++p;
  }
  while (++p < last) {
    if (*p == kEsc) {
      ++p;
      if (in_class(c, uc(*p))) return want;
    } else if (p[1] == '-' && p + 2 < last) {
      if (uc(p[0]) <= c && c <= uc(p[2])) return want;
      p += 2;
    } else if (uc(*p) == c) {
      return want;
    }
  }
  return !want;
}

struct Matcher {
  lua_State* L;
  const char* src;
  const char* src_end;
  const char* pat_end;
  int depth = kMaxDepth;
  int level = 0;
  unsigned steps = 0;
  struct {
    const char* init;
    ptrdiff_t len;
  } capture[kMaxCaptures];

  void init(lua_State* l, const char* s, size_t ls, const char* p, size_t lp) {
    L = l;
    src = s;
    src_end = s + ls;
    pat_end = p + lp;
    steps = 0;
  }
  // Before each attempt at a new position.
  void reset() {
    level = 0;
    depth = kMaxDepth;
  }
  void step(unsigned n = 1) {
    steps += n;
    if (steps >= kStepsPerCharge) flush();
  }
  void flush() {
    if (steps) {
      const unsigned n = steps;
      steps = 0;
      State::charge(L, n);
    }
  }

  // The end of the single-character class at p.
  const char* class_end(const char* p) {
    switch (*p++) {
      case kEsc:
        if (p == pat_end) luaL_error(L, "malformed pattern (ends with '%%')");
        return p + 1;
      case '[':
        if (*p == '^') ++p;
        do {  // the first character is never the closing ']'
          if (p == pat_end) luaL_error(L, "malformed pattern (missing ']')");
          if (*p++ == kEsc && p < pat_end) ++p;
        } while (*p != ']');
        return p + 1;
      default:
        return p;
    }
  }

  // Whether the character at s matches the class [p, ep).
  bool single(const char* s, const char* p, const char* ep) const {
    if (s >= src_end) return false;
    const int c = uc(*s);
    switch (*p) {
      case '.':
        return true;
      case kEsc:
        return in_class(c, uc(p[1]));
      case '[':
        return in_set(c, p, ep - 1);
      default:
        return uc(*p) == c;
    }
  }

  // %bxy at s (p at x).
  const char* balance(const char* s, const char* p) {
    if (p >= pat_end - 1) luaL_error(L, "malformed pattern (missing arguments to '%%b')");
    if (s >= src_end || *s != *p) return nullptr;
    const char open = p[0], close = p[1];
    int depth_of = 1;
    while (++s < src_end) {
      step();
      if (*s == close) {
        if (--depth_of == 0) return s + 1;
      } else if (*s == open) {
        ++depth_of;
      }
    }
    return nullptr;
  }

  // x* (or x+ from one further): the longest run first.
  const char* greedy(const char* s, const char* p, const char* ep) {
    ptrdiff_t n = 0;
    while (single(s + n, p, ep)) {
      step();
      ++n;
    }
    for (; n >= 0; --n) {
      step();
      if (const char* r = match(s + n, ep + 1)) return r;
    }
    return nullptr;
  }

  // x-: the shortest run first.
  const char* lazy(const char* s, const char* p, const char* ep) {
    for (;;) {
      step();
      if (const char* r = match(s, ep + 1)) return r;
      if (!single(s, p, ep)) return nullptr;
      ++s;
    }
  }

  const char* open_capture(const char* s, const char* p, ptrdiff_t what) {
    if (level >= kMaxCaptures) luaL_error(L, "too many captures");
    capture[level].init = s;
    capture[level].len = what;
    ++level;
    const char* r = match(s, p);
    if (!r) --level;
    return r;
  }

  const char* close_capture(const char* s, const char* p) {
    int l = level - 1;
    while (l >= 0 && capture[l].len != kUnfinished) --l;
    if (l < 0) luaL_error(L, "invalid pattern capture");
    capture[l].len = s - capture[l].init;
    const char* r = match(s, p);
    if (!r) capture[l].len = kUnfinished;
    return r;
  }

  // %1 .. %9 at s.
  const char* back_reference(const char* s, int digit) {
    const int l = digit - '1';
    if (l < 0 || l >= level || capture[l].len == kUnfinished)
      luaL_error(L, "invalid capture index %%%d", l + 1);
    const auto len = static_cast<size_t>(capture[l].len);
    step(static_cast<unsigned>(1 + len / kCompareChunk));
    if (static_cast<size_t>(src_end - s) >= len && std::memcmp(capture[l].init, s, len) == 0)
      return s + len;
    return nullptr;
  }

  // The end of the match of [p, pat_end) at s, or null.
  const char* match(const char* s, const char* p) {
    if (depth-- == 0) luaL_error(L, "pattern too complex");
    s = match_here(s, p);
    ++depth;
    return s;
  }

  const char* match_here(const char* s, const char* p) {
    for (;;) {
      step();
      if (p == pat_end) return s;
      switch (*p) {
        case '(':
          if (p[1] == ')') return open_capture(s, p + 2, kPosition);
          return open_capture(s, p + 1, kUnfinished);
        case ')':
          return close_capture(s, p + 1);
        case '$':
          if (p + 1 == pat_end) return s == src_end ? s : nullptr;
          break;
        case kEsc:
          if (p[1] == 'b') {
            s = balance(s, p + 2);
            if (!s) return nullptr;
            p += 4;
            continue;
          }
          if (p[1] == 'f') {
            p += 2;
            if (*p != '[') luaL_error(L, "missing '[' after '%%f' in pattern");
            const char* ep = class_end(p);
            const int prev = s == src ? '\0' : uc(s[-1]);
            const int cur = s < src_end ? uc(*s) : '\0';
            if (in_set(prev, p, ep - 1) || !in_set(cur, p, ep - 1)) return nullptr;
            p = ep;
            continue;
          }
          if (std::isdigit(uc(p[1]))) {
            s = back_reference(s, uc(p[1]));
            if (!s) return nullptr;
            p += 2;
            continue;
          }
          break;
        default:
          break;
      }
      // A single-character class, maybe repeated.
      const char* ep = class_end(p);
      if (!single(s, p, ep)) {
        if (*ep == '*' || *ep == '?' || *ep == '-') {  // may match nothing
          p = ep + 1;
          continue;
        }
        return nullptr;
      }
      switch (*ep) {
        case '?':
          if (const char* r = match(s + 1, ep + 1)) return r;
          p = ep + 1;
          continue;
        case '+':
          return greedy(s + 1, p, ep);
        case '*':
          return greedy(s, p, ep);
        case '-':
          return lazy(s, p, ep);
        default:
          ++s;
          p = ep;
          continue;
      }
    }
  }

  // Capture i of the match [s, e): its text (the length returned), or a
  // position capture pushed (kPosition returned). Without captures, i 0 is
  // the whole match.
  ptrdiff_t capture_text(int i, const char* s, const char* e, const char** text) {
    if (i >= level) {
      if (i != 0) luaL_error(L, "invalid capture index %%%d", i + 1);
      *text = s;
      return e - s;
    }
    const ptrdiff_t len = capture[i].len;
    *text = capture[i].init;
    if (len == kUnfinished) luaL_error(L, "unfinished capture");
    if (len == kPosition) lua_pushinteger(L, (capture[i].init - src) + 1);
    return len;
  }

  void push_capture(int i, const char* s, const char* e) {
    const char* text = nullptr;
    const ptrdiff_t len = capture_text(i, s, e, &text);
    if (len != kPosition) lua_pushlstring(L, text, static_cast<size_t>(len));
  }

  // The captures of the match [s, e) (the whole match when there are none
  // and s is not null); their number.
  int push_captures(const char* s, const char* e) {
    const int n = (level == 0 && s) ? 1 : level;
    luaL_checkstack(L, n, "too many captures");
    for (int i = 0; i < n; ++i) push_capture(i, s, e);
    return n;
  }
};

// Lua's posrelatI: a start position (negative from the end) as 1-based.
size_t start_at(lua_Integer pos, size_t len) {
  if (pos > 0) return static_cast<size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<size_t>(pos) + 1;
}

// Whether the pattern has no special character (embedded zeros included).
bool plain_pattern(const char* p, size_t lp) {
  size_t at = 0;
  do {
    if (std::strpbrk(p + at, "^$*+?.([%-")) return false;
    at += std::strlen(p + at) + 1;
  } while (at <= lp);
  return true;
}

// The first occurrence of [p, p + lp) in [s, s + ls), or null.
const char* find_plain(Matcher& m, const char* s, size_t ls, const char* p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  const char* end = s + (ls - lp) + 1;  // past the last possible start
  while (s < end) {
    const auto* hit = static_cast<const char*>(std::memchr(s, *p, static_cast<size_t>(end - s)));
    if (!hit) return nullptr;
    bool same = true;
    for (size_t off = 1; off < lp && same; off += kCompareChunk) {
      m.step();
      same = std::memcmp(hit + off, p + off, std::min(kCompareChunk, lp - off)) == 0;
    }
    m.step();
    if (same) return hit;
    s = hit + 1;
  }
  return nullptr;
}

int find_or_match(lua_State* L, bool find) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  Matcher m;
  m.init(L, s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) || plain_pattern(p, lp))) {
    const char* hit = find_plain(m, s + init, ls - init, p, lp);
    m.flush();
    if (hit) {
      lua_pushinteger(L, (hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>((hit - s) + lp));
      return 2;
    }
  } else {
    const bool anchor = *p == '^';
    if (anchor) {
      ++p;
      --lp;
      m.pat_end = p + lp;
    }
    const char* at = s + init;
    do {
      m.reset();
      if (const char* e = m.match(at, p)) {
        m.flush();
        if (find) {
          lua_pushinteger(L, (at - s) + 1);
          lua_pushinteger(L, e - s);
          return m.push_captures(nullptr, nullptr) + 2;
        }
        return m.push_captures(at, e);
      }
    } while (at++ < m.src_end && !anchor);
    m.flush();
  }
  luaL_pushfail(L);
  return 1;
}

int str_find(lua_State* L) {
  return find_or_match(L, true);
}

int str_match(lua_State* L) {
  return find_or_match(L, false);
}

// The state of a gmatch iterator (a userdata; the subject and the pattern
// are kept alive as upvalues of the iterator).
struct GMatch {
  const char* at;
  const char* p;
  const char* last;  // end of the last match: an empty match there is skipped
  Matcher m;
};

int gmatch_next(lua_State* L) {
  auto* g = static_cast<GMatch*>(lua_touserdata(L, lua_upvalueindex(3)));
  g->m.L = L;  // the iterator may be called from another coroutine
  for (const char* at = g->at; at <= g->m.src_end; ++at) {
    g->m.reset();
    const char* e = g->m.match(at, g->p);
    if (e && e != g->last) {
      g->m.flush();
      g->at = g->last = e;
      return g->m.push_captures(at, e);
    }
  }
  g->m.flush();
  g->at = g->m.src_end + 1;
  return 0;
}

int str_gmatch(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  size_t init = start_at(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) init = ls + 1;  // no match at all
  lua_settop(L, 2);
  auto* g = new (lua_newuserdatauv(L, sizeof(GMatch), 0)) GMatch{};  // trivially destructible
  g->m.init(L, s, ls, p, lp);
  g->at = s + init;
  g->p = p;
  g->last = nullptr;
  lua_pushcclosure(L, safe<"gmatch iterator", gmatch_next>, 3);
  return 1;
}

// Appends the replacement string (argument 3) for the match [s, e).
void add_string(Matcher& m, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = m.L;
  size_t l = 0;
  const char* r = lua_tolstring(L, 3, &l);
  const char* end = r + l;
  while (r < end) {
    const auto* esc = static_cast<const char*>(std::memchr(r, kEsc, static_cast<size_t>(end - r)));
    if (!esc) break;
    luaL_addlstring(b, r, static_cast<size_t>(esc - r));
    const char c = esc + 1 < end ? esc[1] : '\0';
    if (c == kEsc) {
      luaL_addchar(b, kEsc);
    } else if (c == '0') {
      luaL_addlstring(b, s, static_cast<size_t>(e - s));
    } else if (std::isdigit(uc(c))) {
      const char* text = nullptr;
      const ptrdiff_t len = m.capture_text(c - '1', s, e, &text);
      if (len == kPosition)
        luaL_addvalue(b);
      else
        luaL_addlstring(b, text, static_cast<size_t>(len));
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", kEsc);
    }
    r = esc + 2;
  }
  if (r < end) luaL_addlstring(b, r, static_cast<size_t>(end - r));
}

// Appends what replaces the match [s, e); false when the match stays
// (a function or table gave false or nil).
bool add_value(Matcher& m, luaL_Buffer* b, const char* s, const char* e, int type) {
  lua_State* L = m.L;
  if (type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    const int n = m.push_captures(s, e);
    lua_call(L, n, 1);
  } else if (type == LUA_TTABLE) {
    m.push_capture(0, s, e);
    lua_gettable(L, 3);
  } else {
    add_string(m, b, s, e);
    return true;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

int str_gsub(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const int type = lua_type(L, 3);
  const lua_Integer max = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  luaL_argexpected(
      L, type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TFUNCTION || type == LUA_TTABLE,
      3, "string/function/table");
  const bool anchor = *p == '^';
  if (anchor) {
    ++p;
    --lp;
  }
  Matcher m;
  m.init(L, s, ls, p, lp);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  const char* at = s;
  const char* last = nullptr;
  lua_Integer n = 0;
  bool changed = false;
  while (n < max) {
    m.reset();
    const char* e = m.match(at, p);
    if (e && e != last) {
      ++n;
      changed = add_value(m, &b, at, e, type) || changed;
      at = last = e;
    } else if (at < m.src_end) {
      m.step();
      luaL_addchar(&b, *at++);
    } else {
      break;
    }
    if (anchor) break;
  }
  m.flush();
  if (!changed) {
    lua_pushvalue(L, 1);  // nothing replaced: the subject itself
  } else {
    luaL_addlstring(&b, at, static_cast<size_t>(m.src_end - at));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void open_patterns(lua_State* L) {
  lua_getglobal(L, LUA_STRLIBNAME);
  lua_pushcfunction(L, (safe<"string.find", str_find>));
  lua_setfield(L, -2, "find");
  lua_pushcfunction(L, (safe<"string.match", str_match>));
  lua_setfield(L, -2, "match");
  lua_pushcfunction(L, (safe<"string.gmatch", str_gmatch>));
  lua_setfield(L, -2, "gmatch");
  lua_pushcfunction(L, (safe<"string.gsub", str_gsub>));
  lua_setfield(L, -2, "gsub");
  lua_pop(L, 1);
}

}  // namespace luacs::lua
