#include "core/nbi/api.h"

namespace luacs::nbi {

void add_file_routes(Router&) {}

}  // namespace luacs::nbi
