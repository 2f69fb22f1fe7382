#include "common.hpp"
#include "cpu/reference/optim.hpp"

namespace cnncore::bindings {

namespace {
using SgdFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const SgdParams&, bool);
using AdamFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        double, const AdamParams&);
using RmspropFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, const RmspropParams&);

// Keyword arguments -> params struct; None -> an undefined Tensor. Same for m and ref.
void def_steps(py::module_& mod, SgdFn sgd, AdamFn adam, RmspropFn rmsprop) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  mod.def(
      "sgd_step",
      [sgd](const Tensor& param, const Tensor& grad, std::optional<Tensor> momentum_buffer,
            double lr, double momentum, double dampening, double weight_decay, bool nesterov,
            bool maximize, bool first_step) {
        SgdParams p;
        p.lr = lr;
        p.momentum = momentum;
        p.dampening = dampening;
        p.weight_decay = weight_decay;
        p.nesterov = nesterov;
        p.maximize = maximize;
        sgd(param, grad, momentum_buffer.value_or(Tensor()), p, first_step);
      },
      py::arg("param"), py::arg("grad"), py::arg("momentum_buffer"), py::arg("lr"),
      py::arg("momentum") = 0.0, py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0,
      py::arg("nesterov") = false, py::arg("maximize") = false, py::arg("first_step") = false,
      nogil,
      "torch.optim.SGD's update of one parameter, in place (param and momentum_buffer).\n"
      "momentum_buffer (None when momentum == 0) is overwritten with the gradient when "
      "first_step.");
  mod.def(
      "adam_step",
      [adam](const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
             const Tensor& exp_avg_sq, std::optional<Tensor> max_exp_avg_sq, double step,
             double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
             bool maximize, bool decoupled_weight_decay) {
        AdamParams p;
        p.lr = lr;
        p.beta1 = beta1;
        p.beta2 = beta2;
        p.eps = eps;
        p.weight_decay = weight_decay;
        p.amsgrad = amsgrad;
        p.maximize = maximize;
        p.decoupled_weight_decay = decoupled_weight_decay;
        adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq.value_or(Tensor()), step, p);
      },
      py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr") = 1e-3, py::arg("beta1") = 0.9,
      py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
      py::arg("amsgrad") = false, py::arg("maximize") = false,
      py::arg("decoupled_weight_decay") = false, nogil,
      "torch.optim.Adam's (AdamW's with decoupled_weight_decay) update of one parameter, in "
      "place.\nstep is the count after this update (1 first); max_exp_avg_sq may be None unless "
      "amsgrad.");
  mod.def(
      "rmsprop_step",
      [rmsprop](const Tensor& param, const Tensor& grad, const Tensor& square_avg,
                std::optional<Tensor> momentum_buffer, std::optional<Tensor> grad_avg, double lr,
                double alpha, double eps, double weight_decay, double momentum, bool centered,
                bool maximize) {
        RmspropParams p;
        p.lr = lr;
        p.alpha = alpha;
        p.eps = eps;
        p.weight_decay = weight_decay;
        p.momentum = momentum;
        p.centered = centered;
        p.maximize = maximize;
        rmsprop(param, grad, square_avg, momentum_buffer.value_or(Tensor()),
                grad_avg.value_or(Tensor()), p);
      },
      py::arg("param"), py::arg("grad"), py::arg("square_avg"), py::arg("momentum_buffer"),
      py::arg("grad_avg"), py::arg("lr") = 1e-2, py::arg("alpha") = 0.99, py::arg("eps") = 1e-8,
      py::arg("weight_decay") = 0.0, py::arg("momentum") = 0.0, py::arg("centered") = false,
      py::arg("maximize") = false, nogil,
      "torch.optim.RMSprop's update of one parameter, in place.\nmomentum_buffer may be None "
      "unless momentum > 0, grad_avg unless centered.");
}
}  // namespace

void bind_optim(py::module_& m, py::module_& ref) {
  def_steps(m, &sgd_step, &adam_step, &rmsprop_step);
  def_steps(ref, &reference::sgd_step, &reference::adam_step, &reference::rmsprop_step);
}

}  // namespace cnncore::bindings
