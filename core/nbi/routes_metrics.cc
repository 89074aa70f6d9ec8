#include "core/nbi/api.h"

namespace luacs::nbi {

void add_metrics_routes(Router&) {}

}  // namespace luacs::nbi
