// The device filter of the API (core/nbi/filter.h): query parameters of
// GET /devices, or the JSON object of POST /jobs, turned into SQL.
//
// Input: one steering byte (JSON or query; the scope tag), then the
// filter. Properties: a filter accepted has only known names and
// well-formed values; its SQL binds every value as a $n parameter, the
// placeholders numbered on from the caller's parameters, and the SQL text
// does not depend on the values (the same filter with other values of the
// same kind gives the same SQL): nothing a client sends is spliced in.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/nbi/filter.h"
#include "fuzz/common.h"

using namespace luacs;
using fuzz::Bytes;

namespace {

std::string like_unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

// The same filter with every value replaced by one of its kind.
nbi::DeviceFilter neutral(const nbi::DeviceFilter& f) {
  nbi::DeviceFilter n = f;
  for (auto& t : n.terms) {
    if (t.name == "online" || t.name == "faulty") continue;
    if (t.name == "informed_before" || t.name == "informed_after") {
      t.value = "2026-01-31T12:00:00Z";
    } else if (t.name.starts_with("param.")) {
      t.name = "param.N";
      t.value = !t.value.empty() && t.value.back() == '*' ? "v*" : "v";
    } else {
      t.value = "v";
    }
  }
  return n;
}

void seeds(fuzz::SeedWriter& w);

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(&seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  const uint8_t flags = in.byte();
  const std::string_view text = in.rest();
  const std::string scope = flags & 2 ? "scope's tag" : "";

  nbi::FilterParse fp;
  if (flags & 1) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return 0;
    fp = nbi::parse_filter(j);
  } else {
    std::vector<std::pair<std::string, std::string>> query;
    for (std::string_view rest = text; !rest.empty();) {
      const size_t amp = rest.find('&');
      const std::string_view kv = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      const size_t eq = kv.find('=');
      query.emplace_back(std::string(kv.substr(0, eq)), eq == std::string_view::npos
                                                            ? std::string()
                                                            : std::string(kv.substr(eq + 1)));
    }
    fp = nbi::parse_filter(query, {"fields", "sort", "limit"});
  }
  if (!fp.filter) {
    FUZZ_CHECK(!fp.error.empty(), "refused without saying why");
    return 0;
  }
  FUZZ_CHECK(fp.error.empty(), "an accepted filter with an error");
  for (const auto& t : fp.filter->terms) {
    if (t.name == "online" || t.name == "faulty")
      FUZZ_CHECK(t.value == "true" || t.value == "false", t.name + "=" + t.value);
    if (t.name == "informed_before" || t.name == "informed_after")
      FUZZ_CHECK(nbi::is_rfc3339(t.value), t.name + "=" + t.value);
    FUZZ_CHECK(t.name != "param.", "param. without a name");
  }

  nbi::SqlParams params(flags >> 2 & 3, std::string("caller's"));
  const size_t before = params.size();
  const std::string sql = nbi::filter_sql(*fp.filter, scope, std::chrono::minutes(15), params);
  // Placeholders: $n for n past the caller's, each bound.
  std::vector<bool> used(params.size() + 1, false);
  for (size_t at = sql.find('$'); at != std::string::npos; at = sql.find('$', at + 1)) {
    size_t n = 0, i = at + 1;
    while (i < sql.size() && sql[i] >= '0' && sql[i] <= '9') n = n * 10 + (sql[i++] - '0');
    FUZZ_CHECK(n > before && n <= params.size(),
               "placeholder $" + std::to_string(n) + " in " + sql);
    used[n] = true;
  }
  for (size_t n = before + 1; n < used.size(); ++n)
    FUZZ_CHECK(used[n], "parameter $" + std::to_string(n) + " bound but unused: " + sql);

  nbi::SqlParams other(before, std::string("caller's"));
  const std::string neutral_sql = nbi::filter_sql(neutral(*fp.filter), scope.empty() ? "" : "t",
                                                  std::chrono::minutes(15), other);
  FUZZ_CHECK(sql == neutral_sql, "the SQL depends on the values:\n" + sql + "\n" + neutral_sql);

  for (const auto& t : fp.filter->terms)
    FUZZ_CHECK(like_unescape(nbi::like_escape(t.value)) == t.value, "like_escape of " + t.value);
  return 0;
}

namespace {

void seeds(fuzz::SeedWriter& w) {
  for (const char* q : {
           "\x00tag=lab&not_tag=old&id_prefix=00D09E-&fields=id",
           "\x02oui=00D09E&product_class=HG&model=X&software_version=1.0&sort=id",
           "\x04informed_before=2026-01-31T12:00:00Z&informed_after=2025-12-31T23:59:60.5+01:00",
           "\x00online=true&faulty=false&param.Device.DeviceInfo.SerialNumber=SN*",
           "\x01{\"tag\": [\"a\", \"b\"], \"online\": true, \"param.Device.X\": \"1\"}",
           "\x03{\"faulty\": false, \"informed_after\": \"2026-01-01t00:00:00z\", \"id_prefix\": "
           "\"a_%\"}",
       })
    w.add(std::string_view(q, 1 + std::string_view(q + 1).size()));
}

}  // namespace
