// The MikroTik files of the policy API (core/files/mikrotik) wired into
// lua::FileServices: publish_alter and publish_manifest over one `publish`
// that keeps a generated file where CPEs fetch it and returns its path
// ("/<token>/<name>") -- the file server in luacs, memory in `luacs test`
// and the policy tests. Any thread that may call `publish`.
#pragma once

#include <functional>
#include <string>

#include "core/files/mikrotik.h"
#include "lua/policy.h"

namespace luacs::files {

using PublishGenerated = std::function<std::string(mikrotik::Generated)>;

void serve_mikrotik_files(lua::FileServices& services, PublishGenerated publish);

}  // namespace luacs::files
