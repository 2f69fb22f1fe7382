// The fused optimizer steps without Python: fast kernels against the reference twins over several
// steps on every ISA this CPU runs, including a ragged size; and the hyperparameter checks.
#include <vector>

#include "check.hpp"
#include "cpu/reference/optim.hpp"

using namespace cnncore;

namespace {

Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape());
  c.copy_(t);
  return c;
}

void run_isa(Isa isa, int64_t n) {
  set_isa(isa);
  const char* name = isa_name(isa);
  manual_seed(7);
  Tensor p0 = randn({n});
  // SGD with Nesterov momentum and weight decay.
  {
    Tensor p = copy_of(p0), pr = copy_of(p0), buf = Tensor::zeros({n}), bufr = Tensor::zeros({n});
    SgdParams o;
    o.lr = 0.1, o.momentum = 0.9, o.weight_decay = 1e-2, o.nesterov = true;
    for (int s = 0; s < 4; ++s) {
      Tensor g = randn({n});
      sgd_step(p, g, buf, o, s == 0);
      reference::sgd_step(pr, g, bufr, o, s == 0);
    }
    CHECK(max_abs_diff(p, pr) < 1e-5, "sgd n=", n, " isa=", name, " diff=", max_abs_diff(p, pr));
  }
  // AdamW with amsgrad.
  {
    Tensor p = copy_of(p0), pr = copy_of(p0);
    std::vector<Tensor> st, str;
    for (int i = 0; i < 3; ++i) st.push_back(Tensor::zeros({n})), str.push_back(Tensor::zeros({n}));
    AdamParams o;
    o.lr = 1e-2, o.weight_decay = 1e-2, o.amsgrad = true, o.decoupled_weight_decay = true;
    for (int s = 1; s <= 4; ++s) {
      Tensor g = randn({n});
      adam_step(p, g, st[0], st[1], st[2], s, o);
      reference::adam_step(pr, g, str[0], str[1], str[2], s, o);
    }
    CHECK(max_abs_diff(p, pr) < 1e-5, "adamw n=", n, " isa=", name, " diff=", max_abs_diff(p, pr));
  }
  // Centered RMSprop with momentum.
  {
    Tensor p = copy_of(p0), pr = copy_of(p0);
    std::vector<Tensor> st, str;
    for (int i = 0; i < 3; ++i) st.push_back(Tensor::zeros({n})), str.push_back(Tensor::zeros({n}));
    RmspropParams o;
    o.momentum = 0.5, o.centered = true, o.weight_decay = 1e-3;
    for (int s = 0; s < 4; ++s) {
      Tensor g = randn({n});
      rmsprop_step(p, g, st[0], st[1], st[2], o);
      reference::rmsprop_step(pr, g, str[0], str[1], str[2], o);
    }
    CHECK(max_abs_diff(p, pr) < 1e-5, "rmsprop n=", n, " isa=", name,
          " diff=", max_abs_diff(p, pr));
  }
}

}  // namespace

int main() {
  for (Isa isa : available_isas())
    for (int64_t n : {1, 7, 33, 40001}) run_isa(isa, n);
  SgdParams bad;
  bad.lr = -1;
  CHECK_THROWS(ValueError, validate(bad));
  Tensor p = Tensor::zeros({3}), g = Tensor::zeros({4});
  CHECK_THROWS(ValueError, sgd_step(p, g, Tensor(), SgdParams{}, true));
  return report("test_optim");
}
