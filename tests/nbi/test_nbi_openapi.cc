// docs/openapi.json and the router agree: every route is documented, and
// nothing is documented that the router does not serve.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/nbi/api.h"
#include "core/nbi/openapi.h"

using namespace luacs;

namespace {

std::set<std::string> router_routes() {
  nbi::Api api(nbi::Options{}, nbi::Services{});
  std::set<std::string> out;
  for (const auto& r : api.router().routes()) out.insert(r.method + " " + r.pattern);
  return out;
}

std::set<std::string> documented(const nlohmann::json& doc) {
  std::set<std::string> out;
  for (const auto& [path, ops] : doc.at("paths").items()) {
    for (const auto& [method, op] : ops.items()) {
      if (method == "parameters") continue;
      std::string m = method;
      for (auto& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.insert(m + " " + path);
    }
  }
  return out;
}

}  // namespace

TEST(OpenApi, EveryRouteIsDocumentedAndNothingElse) {
  std::ifstream f(std::string(LUACS_SOURCE_DIR) + "/docs/openapi.json");
  std::stringstream text;
  text << f.rdbuf();
  const auto doc = nlohmann::json::parse(text.str());
  EXPECT_EQ(doc.value("openapi", ""), "3.0.3");
  const auto routes = router_routes();
  const auto docs = documented(doc);
  for (const auto& r : routes)
    EXPECT_TRUE(docs.count(r)) << r << " is served but not in docs/openapi.json";
  for (const auto& d : docs)
    EXPECT_TRUE(routes.count(d)) << d << " is in docs/openapi.json but not served";
  EXPECT_GE(routes.size(), 3u);
}

TEST(OpenApi, TheServedDocumentIsTheOneInTheRepository) {
  std::ifstream f(std::string(LUACS_SOURCE_DIR) + "/docs/openapi.json");
  std::stringstream text;
  text << f.rdbuf();
  EXPECT_EQ(nlohmann::json::parse(nbi::openapi_json()), nlohmann::json::parse(text.str()));
}
