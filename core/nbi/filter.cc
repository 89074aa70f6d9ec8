#include "core/nbi/filter.h"

#include <algorithm>
#include <array>

namespace luacs::nbi {

namespace {

constexpr std::array<std::string_view, 11> kNames = {"tag",
                                                     "not_tag",
                                                     "id_prefix",
                                                     "oui",
                                                     "product_class",
                                                     "model",
                                                     "software_version",
                                                     "informed_before",
                                                     "informed_after",
                                                     "online",
                                                     "faulty"};

constexpr std::string_view kParamPrefix = "param.";

bool known(std::string_view name) {
  return name.starts_with(kParamPrefix) ||
         std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

std::string known_list() {
  std::string s;
  for (auto n : kNames) s += std::string(n) + ", ";
  return s + "param.<Name>";
}

// The value of one term is well-formed; "" or why not.
std::string check_term(const FilterTerm& t) {
  if (t.name == "online" || t.name == "faulty") {
    if (t.value != "true" && t.value != "false") return "'" + t.name + "' must be true or false";
  } else if (t.name == "informed_before" || t.name == "informed_after") {
    if (!is_rfc3339(t.value))
      return "'" + t.name + "' must be an RFC 3339 time such as 2026-01-31T12:00:00Z";
  } else if (t.name.size() == kParamPrefix.size() && t.name.starts_with(kParamPrefix)) {
    return "'param.' needs a parameter name: param.Device.DeviceInfo.SerialNumber=...";
  }
  return "";
}

FilterParse finish(DeviceFilter f, const std::vector<std::string>& unknown) {
  if (!unknown.empty()) {
    std::string names;
    for (const auto& n : unknown) names += (names.empty() ? "'" : ", '") + n + "'";
    return {std::nullopt, "unknown filter " + names + " (known: " + known_list() + ")"};
  }
  for (const auto& t : f.terms)
    if (auto e = check_term(t); !e.empty()) return {std::nullopt, e};
  return {std::move(f), ""};
}

int digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return -1;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

// Appends v as the next parameter; its placeholder.
std::string bind(SqlParams& params, std::string v) {
  params.emplace_back(std::move(v));
  return "$" + std::to_string(params.size());
}

// The stored value of a parameter: parameters is {name: [value, type, read_at]}.
std::string stored_value(const std::string& name_placeholder) {
  return "(parameters->" + name_placeholder + "::text->>0)";
}

std::string device_info(const std::string& leaf, SqlParams& params, const std::string& value) {
  const auto v = bind(params, value);
  return "(parameters->'InternetGatewayDevice.DeviceInfo." + leaf + "'->>0 = " + v +
         " OR parameters->'Device.DeviceInfo." + leaf + "'->>0 = " + v + ")";
}

std::string term_sql(const FilterTerm& t, std::chrono::milliseconds online_window,
                     SqlParams& params) {
  const auto& n = t.name;
  if (n == "tag") return "tags @> ARRAY[" + bind(params, t.value) + "]::text[]";
  if (n == "not_tag") return "NOT (tags @> ARRAY[" + bind(params, t.value) + "]::text[])";
  if (n == "id_prefix") return "id LIKE " + bind(params, like_escape(t.value) + "%");
  if (n == "oui") return "oui = " + bind(params, t.value);
  if (n == "product_class") return "product_class = " + bind(params, t.value);
  if (n == "model") return device_info("ModelName", params, t.value);
  if (n == "software_version") return device_info("SoftwareVersion", params, t.value);
  if (n == "informed_before") return "last_inform < " + bind(params, t.value) + "::timestamptz";
  if (n == "informed_after") return "last_inform > " + bind(params, t.value) + "::timestamptz";
  if (n == "online") {
    const auto w = bind(params, std::to_string(online_window.count()) + " milliseconds");
    return "last_inform " + std::string(t.value == "true" ? ">=" : "<") + " now() - " + w +
           "::interval";
  }
  if (n == "faulty") {
    return std::string(t.value == "true" ? "" : "NOT ") +
           "EXISTS (SELECT 1 FROM faults WHERE faults.device_id = devices.id)";
  }
  // param.<Name>
  const auto name = bind(params, n.substr(kParamPrefix.size()));
  if (!t.value.empty() && t.value.back() == '*') {
    const std::string_view prefix(t.value.data(), t.value.size() - 1);
    return stored_value(name) + " LIKE " + bind(params, like_escape(prefix) + "%");
  }
  return stored_value(name) + " = " + bind(params, t.value);
}

}  // namespace

FilterParse parse_filter(const std::vector<std::pair<std::string, std::string>>& query,
                         const std::vector<std::string_view>& others) {
  DeviceFilter f;
  std::vector<std::string> unknown;
  for (const auto& [k, v] : query) {
    if (std::find(others.begin(), others.end(), k) != others.end()) continue;
    if (known(k))
      f.terms.push_back({k, v});
    else if (std::find(unknown.begin(), unknown.end(), k) == unknown.end())
      unknown.push_back(k);
  }
  return finish(std::move(f), unknown);
}

FilterParse parse_filter(const nlohmann::json& j) {
  if (!j.is_object()) return {std::nullopt, "the filter must be a JSON object"};
  DeviceFilter f;
  std::vector<std::string> unknown;
  for (const auto& item : j.items()) {
    // Not a structured binding: the lambda below uses the key, and clang
    // before 16 cannot capture a binding.
    const std::string& k = item.key();
    const nlohmann::json& v = item.value();
    if (!known(k)) {
      unknown.push_back(k);
      continue;
    }
    const bool flag = k == "online" || k == "faulty";
    auto add = [&](const nlohmann::json& e) {
      if (e.is_string()) {
        f.terms.push_back({k, e.get<std::string>()});
        return true;
      }
      if (flag && e.is_boolean()) {
        f.terms.push_back({k, e.get<bool>() ? "true" : "false"});
        return true;
      }
      return false;
    };
    bool ok = true;
    if (v.is_array()) {
      for (const auto& e : v) ok = ok && !e.is_array() && add(e);
    } else {
      ok = add(v);
    }
    if (!ok)
      return {std::nullopt, "filter '" + k + "' must be a string" +
                                (flag ? std::string(" or a boolean") : "") +
                                ", or an array of them"};
  }
  return finish(std::move(f), unknown);
}

std::string filter_sql(const DeviceFilter& f, const std::string& scope_tag,
                       std::chrono::milliseconds online_window, SqlParams& params) {
  std::string sql;
  auto add = [&](const std::string& cond) { sql += (sql.empty() ? "" : " AND ") + cond; };
  if (!scope_tag.empty()) add(term_sql({"tag", scope_tag}, online_window, params));
  for (const auto& t : f.terms) add(term_sql(t, online_window, params));
  return sql.empty() ? "TRUE" : sql;
}

bool is_rfc3339(std::string_view s) {
  // 2026-01-31T12:00:00[.fff](Z|+hh:mm|-hh:mm)
  const int year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  const int hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  if (s.size() < 20 || year < 0 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
    return false;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return false;
  if (month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60)
    return false;
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[month - 1] || (month == 2 && day == 29 && !leap)) return false;
  size_t i = 19;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  const auto zone = s.substr(i);
  if (zone == "Z" || zone == "z") return true;
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
         digits(zone, 1, 2) >= 0 && digits(zone, 1, 2) <= 23 && digits(zone, 4, 2) >= 0 &&
         digits(zone, 4, 2) <= 59;
}

std::string like_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\' || c == '%' || c == '_') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace luacs::nbi
