#include "core/nbi/api.h"

namespace luacs::nbi {

void add_task_routes(Router&) {}

}  // namespace luacs::nbi
