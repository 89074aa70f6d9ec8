// The northbound API's routes: method + path pattern -> role and handler.
//
// The route table is the single list of what the API serves: the
// connection matches against it, /openapi.json is checked against it by a
// test (tests/nbi/test_nbi_openapi.cc), and docs/nbi.md documents it.
// Patterns are literal segments and {name} placeholders, one per segment:
// "/devices/{id}/tags/{tag}".
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/nbi/exchange.h"

namespace luacs::nbi {

using Handler = std::function<void(const ExchangePtr&)>;
using StreamFactory = std::function<std::unique_ptr<BodyStream>(const ExchangePtr&)>;

struct Route {
  std::string method;       // GET HEAD POST PUT DELETE
  std::string pattern;      // "/devices/{id}"
  Role role = Role::kRead;  // kNone: no token needed
  // Refused to a token scoped to a tag (files, policy, metrics): what it
  // acts on is not one customer's devices.
  bool fleet_wide = false;
  // /metrics: also open, without a token, to the [metrics] allow CIDRs.
  bool metrics = false;
  Handler handler;
  StreamFactory stream_body;          // set: the body is streamed to it, not buffered
  std::vector<std::string> segments;  // the pattern split at '/'
};

// A route with the usual defaults (fleet_wide, metrics, stream_body unset).
inline Route route(std::string method, std::string pattern, Role role, Handler handler) {
  Route r;
  r.method = std::move(method);
  r.pattern = std::move(pattern);
  r.role = role;
  r.handler = std::move(handler);
  return r;
}

class Router {
 public:
  void add(Route r);

  struct Match {
    const Route* route = nullptr;     // null: see allow
    std::vector<std::string> params;  // decoded, in pattern order
    std::string allow;                // the path exists with these methods (405), or "" (404)
  };
  // `segments`: the request path split at '/' and percent-decoded.
  Match match(std::string_view method, const std::vector<std::string>& segments) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

// "/a/b%20c" -> {"a", "b c"}; nullopt when a segment has a bad escape or a NUL.
std::optional<std::vector<std::string>> split_path(std::string_view path);

}  // namespace luacs::nbi
