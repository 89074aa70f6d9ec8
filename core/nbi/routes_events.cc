#include "core/nbi/api.h"

namespace luacs::nbi {

void add_event_routes(Router&) {}

}  // namespace luacs::nbi
