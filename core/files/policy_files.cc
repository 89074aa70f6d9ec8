#include "core/files/policy_files.h"

#include <memory>
#include <utility>

namespace luacs::files {

void serve_mikrotik_files(lua::FileServices& services, PublishGenerated publish) {
  auto served =
      [p = std::make_shared<PublishGenerated>(std::move(publish))](mikrotik::Generated g) {
        lua::ServedFile s{"", g.name, g.sha256, g.bytes.size()};
        s.path = (*p)(std::move(g));
        return s;
      };
  services.publish_alter = [served](std::string_view device_id, std::string script,
                                    const std::optional<std::string>& name) {
    return served(mikrotik::alter_script(device_id, std::move(script), name));
  };
  services.publish_manifest = [served](const std::vector<std::string>& urls) {
    return served(mikrotik::upgrade_manifest(urls));
  };
}

}  // namespace luacs::files
