// The Winograd F(4x4, 3x3) path without Python: forced on ragged 3x3 stride-1 shapes (odd sizes,
// C and K not multiples of the vector width, padding 0..3 and asymmetric), forward and
// backward-input against the reference twin on every ISA this CPU runs. Prints the failing shape.
#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"
#include "cpu/reference/conv.hpp"

using namespace cnncore;

namespace {

struct Case {
  int64_t N, C, H, W, K, pt, pb, pl, pr;
  const char* what;
};

double rel_err(const Tensor& a, const Tensor& b) {
  double scale = 1e-6;
  Tensor bc = b.contiguous();
  for (int64_t i = 0; i < bc.numel(); ++i)
    scale = std::fmax(scale, std::fabs(bc.data<float>()[i]));
  return max_abs_diff(a, b) / scale;
}

}  // namespace

int main() {
  manual_seed(4);
  const std::vector<Case> cases = {
      {2, 17, 13, 11, 19, 1, 1, 1, 1, "ragged, pad 1"},
      {1, 16, 1, 1, 16, 1, 1, 1, 1, "1x1 image"},
      {1, 20, 7, 9, 33, 0, 0, 0, 0, "no padding"},
      {3, 5, 3, 5, 7, 1, 1, 1, 1, "few channels"},
      {1, 18, 10, 13, 21, 0, 2, 1, 0, "asymmetric"},
      {1, 33, 9, 4, 40, 3, 1, 0, 3, "padding 3"},
      {1, 40, 2, 3, 24, 1, 1, 1, 1, "fewer tiles than threads"},
      {2, 17, 9, 37, 20, 1, 1, 1, 1, "wide: tile groups cut at the row's end"},
  };
  setenv("CNNCORE_CONV_ALGO", "winograd", 1);
  for (Isa isa : available_isas()) {
    set_isa(isa);
    for (const Case& c : cases) {
      const std::string at = detail::concat(c.what, " N=", c.N, " C=", c.C, " H=", c.H, " W=",
                                            c.W, " K=", c.K, " pad=", c.pt, ",", c.pb, ",",
                                            c.pl, ",", c.pr, " isa=", isa_name(isa));
      Conv2dOptions o;
      o.padding = Padding2d::asymmetric(c.pt, c.pb, c.pl, c.pr);
      Tensor x = randn({c.N, c.C, c.H, c.W}), w = randn({c.K, c.C, 3, 3}), b = randn({c.K});
      const Conv2dParams p = conv2d_params(x.shape(), w.shape(), o);
      CHECK(conv2d_algorithm(p).rfind("winograd:", 0) == 0, "", at, ": ", conv2d_algorithm(p));
      Tensor y = conv2d_forward(x, w, b, o), yr = reference::conv2d_forward(x, w, b, o);
      CHECK(rel_err(y, yr) < 1e-4, "forward ", at, " err ", rel_err(y, yr));
      Tensor dy = randn(p.output_shape());
      Tensor dx = conv2d_backward_input(dy, w, x.shape(), o);
      Tensor dxr = reference::conv2d_backward_input(dy, w, x.shape(), o);
      CHECK(rel_err(dx, dxr) < 1e-4, "backward_input ", at, " err ", rel_err(dx, dxr));
      // The transformed weights are cached: a float changed in place must show at once.
      w.data<float>()[w.numel() / 2] += 1.0f;
      y = conv2d_forward(x, w, b, o);
      yr = reference::conv2d_forward(x, w, b, o);
      CHECK(rel_err(y, yr) < 1e-4, "forward after an in-place change ", at);
      dx = conv2d_backward_input(dy, w, x.shape(), o);
      dxr = reference::conv2d_backward_input(dy, w, x.shape(), o);
      CHECK(rel_err(dx, dxr) < 1e-4, "backward_input after an in-place change ", at);
    }
  }
  unsetenv("CNNCORE_CONV_ALGO");
  return report("test_winograd");
}
