#include "common.hpp"
#include "cpu/reference/norm.hpp"

namespace cnncore::bindings {

void bind_norm(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("local_response_norm_forward", &local_response_norm_forward, py::arg("x"), py::arg("size"),
        py::arg("alpha"), py::arg("beta"), py::arg("k"), nogil,
        "x / (k + alpha/size * window sum of x^2 over channels)^beta");
  m.def("local_response_norm_backward", &local_response_norm_backward, py::arg("grad_output"),
        py::arg("x"), py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"), nogil,
        "gradient of local_response_norm with respect to x");
  m.def("batch_norm_forward", &batch_norm_forward, py::arg("x"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("weight"), py::arg("bias"), py::arg("training"),
        py::arg("momentum"), py::arg("eps"), nogil,
        "batch norm; returns (y, save_mean, save_invstd); updates running stats in place when "
        "training");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("grad_output"), py::arg("x"),
        py::arg("weight"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"),
        nogil, "returns (dx, dweight, dbias)");
  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("p"), py::arg("channel_wise"),
        nogil, "inverted dropout from the global generator; returns (y, mask)");
  m.def("dropout_backward", &dropout_backward, py::arg("grad_output"), py::arg("mask"), nogil,
        "dx = dy * mask (broadcast over planes for a channel mask)");

  ref.def("local_response_norm_forward", &reference::local_response_norm_forward, py::arg("x"),
          py::arg("size"), py::arg("alpha"), py::arg("beta"), py::arg("k"), nogil,
          "reference local_response_norm");
  ref.def("local_response_norm_backward", &reference::local_response_norm_backward,
          py::arg("grad_output"), py::arg("x"), py::arg("size"), py::arg("alpha"),
          py::arg("beta"), py::arg("k"), nogil, "reference local_response_norm backward");
  ref.def("batch_norm_forward", &reference::batch_norm_forward, py::arg("x"),
          py::arg("running_mean"), py::arg("running_var"), py::arg("weight"), py::arg("bias"),
          py::arg("training"), py::arg("momentum"), py::arg("eps"), nogil,
          "reference batch_norm");
  ref.def("batch_norm_backward", &reference::batch_norm_backward, py::arg("grad_output"),
          py::arg("x"), py::arg("weight"), py::arg("save_mean"), py::arg("save_invstd"),
          py::arg("training"), nogil, "reference batch_norm backward");
  ref.def("dropout_forward", &reference::dropout_forward, py::arg("x"), py::arg("p"),
          py::arg("channel_wise"), nogil, "reference dropout");
  ref.def("dropout_backward", &reference::dropout_backward, py::arg("grad_output"),
          py::arg("mask"), nogil, "reference dropout backward");
}

}  // namespace cnncore::bindings
