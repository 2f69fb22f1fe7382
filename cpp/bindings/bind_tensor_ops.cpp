#include "common.hpp"

namespace cnncore::bindings {

void bind_tensor_ops(py::module_& m, py::module_& ref) {}

}  // namespace cnncore::bindings
