#include "common.hpp"

namespace cnncore::bindings {

void bind_optim(py::module_& m, py::module_& ref) {}

}  // namespace cnncore::bindings
