// luacs.version_compare: RouterOS-style version order, pure (any thread).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include "lua/policy.h"

namespace luacs::lua {

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
