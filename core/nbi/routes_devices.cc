#include "core/nbi/api.h"

namespace luacs::nbi {

void add_device_routes(Router&) {}

}  // namespace luacs::nbi
