// The text of GET /metrics: the series counted where things happen
// (core/metrics) and the counters the server, the store, the policy manager
// and the STUN server keep anyway, read now. Part of wiring the process
// together (core/main.cc), apart so that main stays about the process.
#pragma once

#include <string>

namespace luacs::server {
class Server;
}
namespace luacs::store {
class Store;
}
namespace luacs::lua {
class PolicyManager;
}
namespace luacs::connreq {
class StunServer;
}

namespace luacs::app {

// `store` and `stun` may be null (not configured).
std::string metrics_text(const server::Server& server, const store::Store* store,
                         lua::PolicyManager& policies, const connreq::StunServer* stun);

}  // namespace luacs::app
