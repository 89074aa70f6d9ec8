#include "core/nbi/api.h"

namespace luacs::nbi {

void add_fault_and_session_routes(Router&) {}

}  // namespace luacs::nbi
