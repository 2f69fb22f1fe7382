#include "common.hpp"
#include "cpu/reference/loss.hpp"

namespace cnncore::bindings {

void bind_loss(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  py::enum_<Reduction>(m, "Reduction", "loss reduction: none, mean or sum")
      .value("none", Reduction::None)
      .value("mean", Reduction::Mean)
      .value("sum", Reduction::Sum);

  m.def("nll_loss_forward", &nll_loss_forward, py::arg("logp"), py::arg("target"),
        py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"), nogil,
        "negative log-likelihood on log-probabilities; returns (loss, total_weight)");
  m.def("nll_loss_backward", &nll_loss_backward, py::arg("grad_output"), py::arg("logp"),
        py::arg("target"), py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"),
        py::arg("total_weight"), nogil, "gradient of nll_loss with respect to logp");
  m.def("cross_entropy_logp_forward", &cross_entropy_logp_forward, py::arg("logp"),
        py::arg("target"), py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"),
        py::arg("label_smoothing"), nogil,
        "cross_entropy after log_softmax (class indices or probabilities, label smoothing); "
        "returns (loss, total_weight)");
  m.def("cross_entropy_logp_backward", &cross_entropy_logp_backward, py::arg("grad_output"),
        py::arg("logp"), py::arg("target"), py::arg("weight"), py::arg("reduction"),
        py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("total_weight"), nogil,
        "gradient of cross_entropy_logp with respect to logp");
  m.def("cross_entropy_logp_backward_target", &cross_entropy_logp_backward_target,
        py::arg("grad_output"), py::arg("logp"), py::arg("target"), py::arg("weight"),
        py::arg("reduction"), py::arg("label_smoothing"), py::arg("total_weight"), nogil,
        "gradient of cross_entropy_logp with respect to probability targets");
  m.def("mse_loss_forward", &mse_loss_forward, py::arg("x"), py::arg("target"),
        py::arg("reduction"), py::arg("weight") = py::none(), nogil,
        "(x - target)^2 (times weight) reduced; weighted mean divides by sum(weight)");
  m.def("mse_loss_backward", &mse_loss_backward, py::arg("grad_output"), py::arg("x"),
        py::arg("target"), py::arg("reduction"), py::arg("weight") = py::none(), nogil,
        "d mse / dx");
  m.def("l1_loss_forward", &l1_loss_forward, py::arg("x"), py::arg("target"),
        py::arg("reduction"), py::arg("weight") = py::none(), nogil,
        "|x - target| (times weight) reduced; weighted mean divides by sum(weight)");
  m.def("l1_loss_backward", &l1_loss_backward, py::arg("grad_output"), py::arg("x"),
        py::arg("target"), py::arg("reduction"), py::arg("weight") = py::none(), nogil,
        "d l1 / dx");
  m.def("smooth_l1_loss_forward", &smooth_l1_loss_forward, py::arg("x"), py::arg("target"),
        py::arg("reduction"), py::arg("beta"), nogil, "Huber-style smooth L1 reduced");
  m.def("smooth_l1_loss_backward", &smooth_l1_loss_backward, py::arg("grad_output"), py::arg("x"),
        py::arg("target"), py::arg("reduction"), py::arg("beta"), nogil, "d smooth_l1 / dx");
  m.def("binary_cross_entropy_forward", &binary_cross_entropy_forward, py::arg("x"),
        py::arg("target"), py::arg("weight"), py::arg("reduction"), nogil,
        "binary cross entropy on probabilities (logs clamped at -100)");
  m.def("binary_cross_entropy_backward", &binary_cross_entropy_backward, py::arg("grad_output"),
        py::arg("x"), py::arg("target"), py::arg("weight"), py::arg("reduction"), nogil,
        "d bce / dx");
  m.def("binary_cross_entropy_backward_target", &binary_cross_entropy_backward_target,
        py::arg("grad_output"), py::arg("x"), py::arg("target"), py::arg("weight"),
        py::arg("reduction"), nogil, "d bce / d target");
  m.def("bce_with_logits_backward_target", &bce_with_logits_backward_target,
        py::arg("grad_output"), py::arg("x"), py::arg("target"), py::arg("weight"),
        py::arg("pos_weight"), py::arg("reduction"), nogil, "d bce_with_logits / d target");
  m.def("bce_with_logits_forward", &bce_with_logits_forward, py::arg("x"), py::arg("target"),
        py::arg("weight"), py::arg("pos_weight"), py::arg("reduction"), nogil,
        "binary cross entropy on logits (stable form)");
  m.def("bce_with_logits_backward", &bce_with_logits_backward, py::arg("grad_output"),
        py::arg("x"), py::arg("target"), py::arg("weight"), py::arg("pos_weight"),
        py::arg("reduction"), nogil, "d bce_with_logits / dx");

  ref.def("nll_loss_forward", &reference::nll_loss_forward, py::arg("logp"), py::arg("target"),
          py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"), nogil,
          "reference nll_loss");
  ref.def("nll_loss_backward", &reference::nll_loss_backward, py::arg("grad_output"),
          py::arg("logp"), py::arg("target"), py::arg("weight"), py::arg("reduction"),
          py::arg("ignore_index"), py::arg("total_weight"), nogil, "reference nll_loss backward");
  ref.def("cross_entropy_logp_forward", &reference::cross_entropy_logp_forward, py::arg("logp"),
          py::arg("target"), py::arg("weight"), py::arg("reduction"), py::arg("ignore_index"),
          py::arg("label_smoothing"), nogil, "reference cross_entropy_logp");
  ref.def("cross_entropy_logp_backward", &reference::cross_entropy_logp_backward,
          py::arg("grad_output"), py::arg("logp"), py::arg("target"), py::arg("weight"),
          py::arg("reduction"), py::arg("ignore_index"), py::arg("label_smoothing"),
          py::arg("total_weight"), nogil, "reference cross_entropy_logp backward");
  ref.def("cross_entropy_logp_backward_target", &reference::cross_entropy_logp_backward_target,
          py::arg("grad_output"), py::arg("logp"), py::arg("target"), py::arg("weight"),
          py::arg("reduction"), py::arg("label_smoothing"), py::arg("total_weight"), nogil,
          "reference cross_entropy_logp target gradient");
  ref.def("mse_loss_forward", &reference::mse_loss_forward, py::arg("x"), py::arg("target"),
          py::arg("reduction"), py::arg("weight") = py::none(), nogil, "reference mse_loss");
  ref.def("mse_loss_backward", &reference::mse_loss_backward, py::arg("grad_output"),
          py::arg("x"), py::arg("target"), py::arg("reduction"), py::arg("weight") = py::none(),
          nogil, "reference mse_loss backward");
}

}  // namespace cnncore::bindings
