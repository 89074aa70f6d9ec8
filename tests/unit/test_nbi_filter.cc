// core/nbi/filter: the device filter of GET /devices and POST /jobs, from
// query parameters or JSON, to a WHERE clause whose values are all $n
// parameters.
#include "core/nbi/filter.h"

#include <gtest/gtest.h>

using namespace luacs::nbi;
using namespace std::chrono_literals;

namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

std::string sql_of(const DeviceFilter& f, SqlParams& params, const std::string& scope = "") {
  return filter_sql(f, scope, 15min, params);
}

}  // namespace

TEST(NbiFilter, QueryTermsBecomeParameters) {
  const auto p =
      parse_filter(Query{{"tag", "gold"}, {"oui", "00AA11"}, {"limit", "5"}}, {"limit", "fields"});
  ASSERT_TRUE(p.filter) << p.error;
  ASSERT_EQ(p.filter->terms.size(), 2u);
  SqlParams params{std::string("already")};
  const auto sql = sql_of(*p.filter, params);
  EXPECT_EQ(sql, "tags @> ARRAY[$2]::text[] AND oui = $3");
  ASSERT_EQ(params.size(), 3u);
  EXPECT_EQ(params[1], "gold");
  EXPECT_EQ(params[2], "00AA11");
}

TEST(NbiFilter, NothingSelectsEverythingAndTheScopeIsOneMoreTag) {
  SqlParams params;
  EXPECT_EQ(sql_of(DeviceFilter{}, params), "TRUE");
  EXPECT_TRUE(params.empty());
  EXPECT_EQ(sql_of(DeviceFilter{}, params, "isp-a"), "tags @> ARRAY[$1]::text[]");
  EXPECT_EQ(params.at(0), "isp-a");
}

TEST(NbiFilter, UnknownNamesAreAllNamed) {
  const auto p = parse_filter(Query{{"tag", "a"}, {"colour", "red"}, {"size", "1"}}, {});
  EXPECT_FALSE(p.filter);
  EXPECT_NE(p.error.find("'colour', 'size'"), std::string::npos) << p.error;
  const auto j = parse_filter(nlohmann::json{{"oui", "x"}, {"vendor", "y"}});
  EXPECT_FALSE(j.filter);
  EXPECT_NE(j.error.find("'vendor'"), std::string::npos) << j.error;
}

TEST(NbiFilter, JsonTakesTheSameNamesBooleansAndArrays) {
  const auto j = nlohmann::json::parse(
      R"({"tag": ["a", "b"], "online": true, "faulty": "false", "param.Device.X": "v*"})");
  const auto p = parse_filter(j);
  ASSERT_TRUE(p.filter) << p.error;
  // An object's names come in sorted order: faulty, online, param., tag.
  SqlParams params;
  const auto sql = sql_of(*p.filter, params);
  EXPECT_EQ(sql,
            "NOT EXISTS (SELECT 1 FROM faults WHERE faults.device_id = devices.id)"
            " AND last_inform >= now() - $1::interval AND (parameters->$2::text->>0) LIKE $3"
            " AND tags @> ARRAY[$4]::text[] AND tags @> ARRAY[$5]::text[]");
  EXPECT_EQ(params, (SqlParams{"900000 milliseconds", "Device.X", "v%", "a", "b"}));
  EXPECT_FALSE(parse_filter(nlohmann::json{{"oui", 5}}).filter);
  EXPECT_FALSE(parse_filter(nlohmann::json{{"tag", true}}).filter);
  EXPECT_FALSE(parse_filter(nlohmann::json::array()).filter);
}

TEST(NbiFilter, ValuesAreCheckedWhereTheyHaveAShape) {
  EXPECT_FALSE(parse_filter(Query{{"online", "yes"}}, {}).filter);
  EXPECT_FALSE(parse_filter(Query{{"faulty", ""}}, {}).filter);
  EXPECT_FALSE(parse_filter(Query{{"informed_after", "yesterday"}}, {}).filter);
  EXPECT_FALSE(parse_filter(Query{{"informed_after", "' OR 1=1 --"}}, {}).filter);
  EXPECT_FALSE(parse_filter(Query{{"param.", "x"}}, {}).filter);
  EXPECT_TRUE(parse_filter(Query{{"informed_before", "2026-02-28T23:59:59.5+01:00"}}, {}).filter);
}

TEST(NbiFilter, InjectionStringsStayValues) {
  const std::string evil = "'); DROP TABLE devices; --";
  const std::vector<std::string> names = {
      "tag",           "not_tag", "id_prefix",        "oui",
      "product_class", "model",   "software_version", "param.Device.X'--"};
  for (const auto& n : names) {
    const auto p = parse_filter(Query{{n, evil}}, {});
    ASSERT_TRUE(p.filter) << n;
    SqlParams params;
    const auto sql = sql_of(*p.filter, params);
    EXPECT_EQ(sql.find("DROP"), std::string::npos) << n << ": " << sql;
    EXPECT_EQ(sql.find("'--"), std::string::npos) << n << ": " << sql;
    EXPECT_FALSE(params.empty()) << n;
  }
}

TEST(NbiFilter, PrefixesEscapeLikeMetacharacters) {
  SqlParams params;
  const auto p = parse_filter(Query{{"id_prefix", "a%b_c\\"}, {"param.X", "50%_*"}}, {});
  ASSERT_TRUE(p.filter);
  const auto sql = sql_of(*p.filter, params);
  EXPECT_NE(sql.find("id LIKE $1"), std::string::npos);
  EXPECT_EQ(params.at(0), "a\\%b\\_c\\\\%");
  EXPECT_EQ(params.at(2), "50\\%\\_%");
  // Without the star: an exact match, the value as given.
  SqlParams exact;
  const auto e = parse_filter(Query{{"param.X", "50%"}}, {});
  EXPECT_EQ(sql_of(*e.filter, exact), "(parameters->$1::text->>0) = $2");
  EXPECT_EQ(exact.at(1), "50%");
}

TEST(NbiFilter, ModelLooksUnderBothRoots) {
  SqlParams params;
  const auto p = parse_filter(Query{{"model", "HG8245"}}, {});
  const auto sql = sql_of(*p.filter, params);
  EXPECT_NE(sql.find("'InternetGatewayDevice.DeviceInfo.ModelName'"), std::string::npos);
  EXPECT_NE(sql.find("'Device.DeviceInfo.ModelName'"), std::string::npos);
  EXPECT_EQ(params.size(), 1u);
}

TEST(NbiFilter, Rfc3339) {
  EXPECT_TRUE(is_rfc3339("2026-01-31T12:00:00Z"));
  EXPECT_TRUE(is_rfc3339("2024-02-29T00:00:00.123456-05:30"));
  EXPECT_FALSE(is_rfc3339("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(is_rfc3339("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(is_rfc3339("2026-01-01T24:00:00Z"));
  EXPECT_FALSE(is_rfc3339("2026-01-01T00:00:00"));
  EXPECT_FALSE(is_rfc3339("2026-01-01T00:00:00.Z"));
  EXPECT_FALSE(is_rfc3339("2026-01-01T00:00:00+0100"));
  EXPECT_FALSE(is_rfc3339("2026-01-01"));
  EXPECT_FALSE(is_rfc3339(""));
}
