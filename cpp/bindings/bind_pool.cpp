#include "common.hpp"

namespace cnncore::bindings {

void bind_pool(py::module_& m, py::module_& ref) {}

}  // namespace cnncore::bindings
