#include "core/nbi/api.h"

namespace luacs::nbi {

void add_job_routes(Router&) {}

}  // namespace luacs::nbi
