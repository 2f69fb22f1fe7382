// conv2d / conv_transpose2d without Python: every fast path against the reference twin, on
// ragged shapes, on every ISA this CPU runs, forward and all three backwards. Prints the failing
// shape.
#include <array>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.hpp"
#include "cpu/reference/conv.hpp"

using namespace cnncore;

namespace {

struct Case {
  int64_t N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, groups;
  const char* what;
};

// Relative to the output's scale: the fast path sums in float, the reference in double.
double rel_err(const Tensor& a, const Tensor& b) {
  double scale = 1e-6;
  Tensor bc = b.contiguous();
  for (int64_t i = 0; i < bc.numel(); ++i) scale = std::fmax(scale, std::fabs(bc.data<float>()[i]));
  return max_abs_diff(a, b) / scale;
}

std::string describe(const Case& c, const char* isa) {
  return detail::concat(c.what, " N=", c.N, " C=", c.C, " H=", c.H, " W=", c.W, " K=", c.K,
                        " k=", c.R, "x", c.S, " stride=", c.sh, ",", c.sw, " pad=", c.ph, ",",
                        c.pw, " dil=", c.dh, ",", c.dw, " groups=", c.groups, " isa=", isa);
}

void check_conv(const Case& c, const Conv2dOptions& o, const char* isa) {
  const std::string at = describe(c, isa);
  Tensor x = randn({c.N, c.C, c.H, c.W});
  Tensor w = randn({c.K, c.C / c.groups, c.R, c.S});
  Tensor b = randn({c.K});
  const Conv2dParams p = conv2d_params(x.shape(), w.shape(), o);
  Tensor y = conv2d_forward(x, w, b, o);
  Tensor yr = reference::conv2d_forward(x, w, b, o);
  CHECK(y.shape() == p.output_shape(), "", at);
  CHECK(rel_err(y, yr) < 1e-5, "forward ", at, " err ", rel_err(y, yr));
  Tensor dy = randn(p.output_shape());
  Tensor dx = conv2d_backward_input(dy, w, x.shape(), o);
  Tensor dxr = reference::conv2d_backward_input(dy, w, x.shape(), o);
  CHECK(rel_err(dx, dxr) < 1e-5, "backward_input ", at, " err ", rel_err(dx, dxr));
  Tensor dw = conv2d_backward_weight(dy, x, w.shape(), o);
  Tensor dwr = reference::conv2d_backward_weight(dy, x, w.shape(), o);
  CHECK(rel_err(dw, dwr) < 1e-5, "backward_weight ", at, " err ", rel_err(dw, dwr));
  // Both at once (the fused depthwise pass, or the two above).
  auto both = conv2d_backward_input_weight(dy, x, w, o);
  CHECK(rel_err(both.first, dxr) < 1e-5, "backward_input_weight dx ", at);
  CHECK(rel_err(both.second, dwr) < 1e-5, "backward_input_weight dw ", at);
  Tensor db = conv2d_backward_bias(dy);
  Tensor dbr = reference::conv2d_backward_bias(dy);
  CHECK(rel_err(db, dbr) < 1e-5, "backward_bias ", at);
  // All three in one call, and each mask alone: undefined where not asked for.
  for (int mask = 1; mask < 8; ++mask) {
    const std::array<bool, 3> m{(mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0};
    Conv2dGrads gr = conv2d_backward(dy, x, w, o, m);
    CHECK(gr.input.defined() == m[0] && gr.weight.defined() == m[1] && gr.bias.defined() == m[2],
          "conv2d_backward mask ", mask, " ", at);
    if (m[0]) CHECK(rel_err(gr.input, dxr) < 1e-5, "conv2d_backward dx ", at);
    if (m[1]) CHECK(rel_err(gr.weight, dwr) < 1e-5, "conv2d_backward dw ", at);
    if (m[2]) CHECK(rel_err(gr.bias, dbr) < 1e-5, "conv2d_backward db ", at);
  }
}

void check_transpose(const Case& c, const Conv2dOptions& o, int64_t oph, int64_t opw,
                     const char* isa) {
  const std::string at = detail::concat("transpose ", describe(c, isa), " output_padding=", oph,
                                        ",", opw);
  // Here C is the transposed conv's input channels and K its output channels.
  Tensor x = randn({c.N, c.C, c.H, c.W});
  Tensor w = randn({c.C, c.K / c.groups, c.R, c.S});
  Tensor b = randn({c.K});
  Tensor y = conv_transpose2d_forward(x, w, b, o, oph, opw);
  Tensor yr = reference::conv_transpose2d_forward(x, w, b, o, oph, opw);
  CHECK(y.shape() == yr.shape(), "", at);
  CHECK(rel_err(y, yr) < 1e-5, "forward ", at, " err ", rel_err(y, yr));
  Tensor dy = randn(y.shape());
  Tensor dx = conv_transpose2d_backward_input(dy, w, x.shape(), o, oph, opw);
  Tensor dxr = reference::conv_transpose2d_backward_input(dy, w, x.shape(), o, oph, opw);
  CHECK(rel_err(dx, dxr) < 1e-5, "backward_input ", at, " err ", rel_err(dx, dxr));
  Tensor dw = conv_transpose2d_backward_weight(dy, x, w.shape(), o, oph, opw);
  Tensor dwr = reference::conv_transpose2d_backward_weight(dy, x, w.shape(), o, oph, opw);
  CHECK(rel_err(dw, dwr) < 1e-5, "backward_weight ", at, " err ", rel_err(dw, dwr));
}

Conv2dOptions options(const Case& c) {
  Conv2dOptions o;
  o.stride_h = c.sh, o.stride_w = c.sw, o.dilation_h = c.dh, o.dilation_w = c.dw;
  o.groups = c.groups;
  o.padding = Padding2d::symmetric(c.ph, c.pw);
  return o;
}

}  // namespace

int main() {
  manual_seed(3);
  // The same kinds of shapes as tests/test_conv.py.
  const std::vector<Case> cases = {
      {2, 3, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, "3x3 same-size"},
      {1, 4, 13, 7, 6, 3, 5, 2, 3, 2, 1, 1, 1, 1, "rect kernel, stride 2x3"},
      {3, 5, 10, 10, 4, 2, 2, 3, 3, 0, 0, 1, 1, 1, "stride > kernel"},
      {2, 4, 9, 9, 6, 3, 3, 1, 1, 2, 3, 2, 2, 2, "dilation, padding > k/2, groups 2"},
      {2, 8, 7, 12, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, "1x1"},
      {2, 6, 7, 9, 12, 1, 1, 2, 1, 0, 0, 1, 1, 3, "1x1 strided, groups 3"},
      {2, 7, 13, 17, 7, 3, 3, 1, 1, 1, 1, 1, 1, 7, "depthwise"},
      {3, 5, 12, 11, 10, 3, 3, 2, 2, 1, 1, 1, 1, 5, "depthwise x2 stride 2"},
      {1, 3, 19, 23, 3, 5, 3, 3, 2, 2, 0, 2, 1, 3, "depthwise dilated stride 3x2"},
      {1, 16, 6, 37, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16, "depthwise wide rows"},
      {5, 3, 8, 8, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, "batch > threads"},
      {1, 64, 61, 59, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, "columns in two row tiles"},
  };
  for (Isa isa : available_isas()) {
    set_isa(isa);
    for (const Case& c : cases) check_conv(c, options(c), isa_name(isa));
    // Asymmetric and 'same' padding (stride 2, even kernel).
    Case a{2, 3, 10, 9, 4, 4, 2, 2, 2, 0, 0, 1, 1, 1, "same stride 2 even kernel"};
    Conv2dOptions o = options(a);
    o.padding = Padding2d::same();
    check_conv(a, o, isa_name(isa));
    o.padding = Padding2d::asymmetric(0, 3, 2, 1);
    a.what = "asymmetric (0,3,2,1)";
    check_conv(a, o, isa_name(isa));
    for (const Case& c : cases) {
      if (c.C % c.groups || c.K % c.groups) continue;
      check_transpose(c, options(c), 0, 0, isa_name(isa));
      if (c.sh > 1 && c.sw > 1) check_transpose(c, options(c), c.sh - 1, 1, isa_name(isa));
    }
    // output_padding >= stride is allowed when dilation is larger.
    Case d{2, 4, 5, 6, 6, 3, 3, 1, 1, 1, 0, 3, 2, 2, "transpose op >= stride"};
    check_transpose(d, options(d), 2, 1, isa_name(isa));
  }
  // The register-blocked direct path forced on the same shapes (by default only <= 8 input
  // channels per group take it).
  setenv("CNNCORE_CONV_ALGO", "direct", 1);
  for (const Case& c : cases) check_conv(c, options(c), "forced direct");
  unsetenv("CNNCORE_CONV_ALGO");
  set_isa(available_isas().back());

  // Paths chosen, and errors.
  Conv2dOptions o;
  CHECK(std::string(conv2d_algorithm(conv2d_params({1, 8, 5, 5}, {8, 1, 3, 3}, [] {
          Conv2dOptions d;
          d.groups = 8;
          return d;
        }()))).rfind("depthwise-direct:", 0) == 0);
  CHECK(conv2d_algorithm(conv2d_params({1, 8, 5, 5}, {4, 8, 1, 1}, o)).rfind("gemm-1x1:", 0) == 0);
  CHECK(conv2d_algorithm(conv2d_params({1, 9, 5, 5}, {4, 9, 3, 3}, o)).rfind("im2col+gemm:", 0) ==
        0);
  CHECK(conv2d_algorithm(conv2d_params({1, 8, 5, 5}, {4, 8, 3, 3}, o)).rfind("direct:", 0) == 0);
  CHECK_THROWS(ValueError, conv2d_params({1, 3, 5, 5}, {4, 4, 3, 3}, o));
  CHECK_THROWS(ValueError, conv2d_params({1, 3, 2, 2}, {4, 3, 3, 3}, o));
  CHECK_THROWS(ValueError, conv2d_params({3, 5, 5}, {4, 3, 3, 3}, o));
  CHECK_THROWS(ValueError, conv2d_params({0, 3, 5, 5}, {4, 3, 3, 3}, o));
  Conv2dOptions bad = o;
  bad.stride_h = 0;
  CHECK_THROWS(ValueError, conv2d_params({1, 3, 5, 5}, {4, 3, 3, 3}, bad));
  bad = o;
  bad.padding = Padding2d::symmetric(-1, 0);
  CHECK_THROWS(ValueError, conv2d_params({1, 3, 5, 5}, {4, 3, 3, 3}, bad));
  CHECK_THROWS(ValueError, conv_transpose2d_params({1, 3, 5, 5}, {3, 4, 3, 3}, o, 1, 0));
  try {
    conv2d_params({1, 3, 5, 5}, {2, 4, 3, 3}, o);
  } catch (const ValueError& e) {
    CHECK(std::string(e.what()) == "conv2d: input has 3 channels but weight expects 4 (groups=1)",
          "", e.what());
  }
  return report("test_conv");
}
