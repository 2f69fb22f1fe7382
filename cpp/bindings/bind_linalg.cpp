#include "common.hpp"
#include "cpu/gemm.hpp"
#include "cpu/reference/linalg.hpp"

namespace cnncore::bindings {

void bind_linalg(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();

  py::class_<GemmBlocking>(m, "GemmBlocking", "SGEMM micro-tile (mr x nr) and cache blocks")
      .def_readonly("mr", &GemmBlocking::mr)
      .def_readonly("nr", &GemmBlocking::nr)
      .def_readonly("mc", &GemmBlocking::mc)
      .def_readonly("kc", &GemmBlocking::kc)
      .def_readonly("nc", &GemmBlocking::nc)
      .def("__repr__", [](const GemmBlocking& b) {
        return detail::concat("GemmBlocking(mr=", b.mr, ", nr=", b.nr, ", mc=", b.mc, ", kc=", b.kc,
                              ", nc=", b.nc, ")");
      });
  m.def("gemm_blocking", &active_gemm_blocking, "blocking of the SGEMM path the active ISA takes");

  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f,
        py::arg("c") = py::none(), nogil,
        "alpha * op(a) @ op(b) + beta * c as a new (M, N) tensor (c is not modified; beta is "
        "ignored without c)");
  m.def("linear_forward", &linear_forward, py::arg("input"), py::arg("weight"),
        py::arg("bias") = py::none(), nogil, "y = x @ w^T + b: x (*, in), w (out, in) -> (*, out)");
  m.def("linear_backward_input", &linear_backward_input, py::arg("grad_output"), py::arg("weight"),
        nogil, "dx = dy @ w: dy (*, out), w (out, in) -> (*, in)");
  m.def("linear_backward_weight", &linear_backward_weight, py::arg("grad_output"),
        py::arg("input"), nogil, "dw = dy^T @ x over all leading dims -> (out, in)");
  m.def("linear_backward_bias", &linear_backward_bias, py::arg("grad_output"), nogil,
        "db = dy summed over all leading dims -> (out,)");
  m.def("matmul", &matmul, py::arg("input"), py::arg("other"), nogil,
        "torch.matmul: 1-D/2-D products and batched products with broadcast batch dims");

  ref.def("gemm", &reference::gemm, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
          py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f,
          py::arg("c") = py::none(), nogil, "reference gemm (naive, double accumulation)");
  ref.def("linear_forward", &reference::linear_forward, py::arg("input"), py::arg("weight"),
          py::arg("bias") = py::none(), nogil, "reference linear forward");
  ref.def("linear_backward_input", &reference::linear_backward_input, py::arg("grad_output"),
          py::arg("weight"), nogil, "reference linear backward to the input");
  ref.def("linear_backward_weight", &reference::linear_backward_weight, py::arg("grad_output"),
          py::arg("input"), nogil, "reference linear backward to the weight");
  ref.def("linear_backward_bias", &reference::linear_backward_bias, py::arg("grad_output"), nogil,
          "reference linear backward to the bias");
  ref.def("matmul", &reference::matmul, py::arg("input"), py::arg("other"), nogil,
          "reference matmul (naive, double accumulation)");
}

}  // namespace cnncore::bindings
