#include "common.hpp"
#include "cpu/reference/activation.hpp"

namespace cnncore::bindings {

void bind_activation(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("relu_forward", &relu_forward, py::arg("x"), nogil, "y = max(x, 0)");
  m.def("relu_backward", &relu_backward, py::arg("grad_output"), py::arg("output"), nogil,
        "dx = dy where y > 0 else 0");
  m.def("leaky_relu_forward", &leaky_relu_forward, py::arg("x"), py::arg("negative_slope"), nogil,
        "y = x if x > 0 else negative_slope * x");
  m.def("leaky_relu_backward", &leaky_relu_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("negative_slope"), nogil, "dx = dy if x > 0 else negative_slope * dy");
  m.def("hardtanh_forward", &hardtanh_forward, py::arg("x"), py::arg("min_val"),
        py::arg("max_val"), nogil, "y = clamp(x, min_val, max_val)");
  m.def("hardtanh_backward", &hardtanh_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("min_val"), py::arg("max_val"), nogil,
        "dx = dy where min_val < x < max_val else 0");
  m.def("sigmoid_forward", &sigmoid_forward, py::arg("x"), nogil, "y = 1 / (1 + exp(-x))");
  m.def("sigmoid_backward", &sigmoid_backward, py::arg("grad_output"), py::arg("output"), nogil,
        "dx = dy * y * (1 - y)");
  m.def("tanh_forward", &tanh_forward, py::arg("x"), nogil, "y = tanh(x)");
  m.def("tanh_backward", &tanh_backward, py::arg("grad_output"), py::arg("output"), nogil,
        "dx = dy * (1 - y^2)");
  m.def("softmax_forward", &softmax_forward, py::arg("x"), py::arg("dim"), nogil,
        "softmax along dim (max-subtracted)");
  m.def("softmax_backward", &softmax_backward, py::arg("grad_output"), py::arg("output"),
        py::arg("dim"), nogil, "dx = y * (dy - sum(dy * y, dim))");
  m.def("log_softmax_forward", &log_softmax_forward, py::arg("x"), py::arg("dim"), nogil,
        "log_softmax along dim (max-subtracted)");
  m.def("log_softmax_backward", &log_softmax_backward, py::arg("grad_output"), py::arg("output"),
        py::arg("dim"), nogil, "dx = dy - exp(y) * sum(dy, dim)");

  ref.def("relu_forward", &reference::relu_forward, py::arg("x"), nogil, "reference relu");
  ref.def("relu_backward", &reference::relu_backward, py::arg("grad_output"), py::arg("output"),
          nogil, "reference relu backward");
  ref.def("leaky_relu_forward", &reference::leaky_relu_forward, py::arg("x"),
          py::arg("negative_slope"), nogil, "reference leaky_relu");
  ref.def("leaky_relu_backward", &reference::leaky_relu_backward, py::arg("grad_output"),
          py::arg("input"), py::arg("negative_slope"), nogil, "reference leaky_relu backward");
  ref.def("hardtanh_forward", &reference::hardtanh_forward, py::arg("x"), py::arg("min_val"),
          py::arg("max_val"), nogil, "reference hardtanh");
  ref.def("hardtanh_backward", &reference::hardtanh_backward, py::arg("grad_output"),
          py::arg("input"), py::arg("min_val"), py::arg("max_val"), nogil,
          "reference hardtanh backward");
  ref.def("sigmoid_forward", &reference::sigmoid_forward, py::arg("x"), nogil,
          "reference sigmoid");
  ref.def("sigmoid_backward", &reference::sigmoid_backward, py::arg("grad_output"),
          py::arg("output"), nogil, "reference sigmoid backward");
  ref.def("tanh_forward", &reference::tanh_forward, py::arg("x"), nogil, "reference tanh");
  ref.def("tanh_backward", &reference::tanh_backward, py::arg("grad_output"), py::arg("output"),
          nogil, "reference tanh backward");
  ref.def("softmax_forward", &reference::softmax_forward, py::arg("x"), py::arg("dim"), nogil,
          "reference softmax");
  ref.def("softmax_backward", &reference::softmax_backward, py::arg("grad_output"),
          py::arg("output"), py::arg("dim"), nogil, "reference softmax backward");
  ref.def("log_softmax_forward", &reference::log_softmax_forward, py::arg("x"), py::arg("dim"),
          nogil, "reference log_softmax");
  ref.def("log_softmax_backward", &reference::log_softmax_backward, py::arg("grad_output"),
          py::arg("output"), py::arg("dim"), nogil, "reference log_softmax backward");
}

}  // namespace cnncore::bindings
