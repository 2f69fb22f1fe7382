#include "common.hpp"
#include "cpu/reference/activation.hpp"

namespace cnncore::bindings {

void bind_activation(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("relu_forward", &relu_forward, py::arg("x"), nogil, "y = max(x, 0)");
  m.def("relu_backward", &relu_backward, py::arg("grad_output"), py::arg("output"), nogil,
        "dx = dy where y > 0 else 0");
  ref.def("relu_forward", &reference::relu_forward, py::arg("x"), nogil);
  ref.def("relu_backward", &reference::relu_backward, py::arg("grad_output"), py::arg("output"),
          nogil);
}

}  // namespace cnncore::bindings
