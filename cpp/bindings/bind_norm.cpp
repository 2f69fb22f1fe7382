#include "common.hpp"

namespace cnncore::bindings {

void bind_norm(py::module_& m, py::module_& ref) {}

}  // namespace cnncore::bindings
