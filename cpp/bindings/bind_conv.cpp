#include <limits>

#include "common.hpp"
#include "cpu/reference/conv.hpp"

namespace cnncore::bindings {

void bind_conv(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();

  py::class_<Padding2d> pad(m, "Padding2d", "conv padding: explicit (top, bottom, left, right), "
                                            "'valid' or 'same'");
  py::enum_<Padding2d::Mode>(pad, "Mode")
      .value("Explicit", Padding2d::Mode::Explicit)
      .value("Valid", Padding2d::Mode::Valid)
      .value("Same", Padding2d::Mode::Same);
  pad.def(py::init<>())
      .def_readwrite("mode", &Padding2d::mode)
      .def_readwrite("top", &Padding2d::top)
      .def_readwrite("bottom", &Padding2d::bottom)
      .def_readwrite("left", &Padding2d::left)
      .def_readwrite("right", &Padding2d::right)
      .def_static("symmetric", &Padding2d::symmetric, py::arg("ph"), py::arg("pw"),
                  "the same padding on both sides of each dimension")
      .def_static("asymmetric", &Padding2d::asymmetric, py::arg("top"), py::arg("bottom"),
                  py::arg("left"), py::arg("right"), "explicit padding per side")
      .def_static("valid", &Padding2d::valid, "no padding")
      .def_static("same", &Padding2d::same,
                  "output = ceil(input / stride), the odd pixel at the bottom/right")
      .def("__repr__", [](const Padding2d& p) {
        if (p.mode == Padding2d::Mode::Valid) return std::string("Padding2d('valid')");
        if (p.mode == Padding2d::Mode::Same) return std::string("Padding2d('same')");
        return detail::concat("Padding2d(top=", p.top, ", bottom=", p.bottom, ", left=", p.left,
                              ", right=", p.right, ")");
      });

  py::class_<Conv2dOptions>(m, "Conv2dOptions", "stride, padding, dilation and groups of a conv")
      .def(py::init([](int64_t sh, int64_t sw, const Padding2d& padding, int64_t dh, int64_t dw,
                       int64_t groups) {
             Conv2dOptions o;
             o.stride_h = sh, o.stride_w = sw, o.padding = padding;
             o.dilation_h = dh, o.dilation_w = dw, o.groups = groups;
             return o;
           }),
           py::arg("stride_h") = 1, py::arg("stride_w") = 1, py::arg("padding") = Padding2d(),
           py::arg("dilation_h") = 1, py::arg("dilation_w") = 1, py::arg("groups") = 1)
      .def_readwrite("stride_h", &Conv2dOptions::stride_h)
      .def_readwrite("stride_w", &Conv2dOptions::stride_w)
      .def_readwrite("padding", &Conv2dOptions::padding)
      .def_readwrite("dilation_h", &Conv2dOptions::dilation_h)
      .def_readwrite("dilation_w", &Conv2dOptions::dilation_w)
      .def_readwrite("groups", &Conv2dOptions::groups);

  py::class_<Conv2dParams>(m, "Conv2dParams", "a conv's sizes, resolved and validated")
      .def_readwrite("N", &Conv2dParams::N)
      .def_readwrite("C", &Conv2dParams::C)
      .def_readwrite("H", &Conv2dParams::H)
      .def_readwrite("W", &Conv2dParams::W)
      .def_readwrite("K", &Conv2dParams::K)
      .def_readwrite("R", &Conv2dParams::R)
      .def_readwrite("S", &Conv2dParams::S)
      .def_readwrite("OH", &Conv2dParams::OH)
      .def_readwrite("OW", &Conv2dParams::OW)
      .def_readwrite("stride_h", &Conv2dParams::stride_h)
      .def_readwrite("stride_w", &Conv2dParams::stride_w)
      .def_readwrite("pad_t", &Conv2dParams::pad_t)
      .def_readwrite("pad_b", &Conv2dParams::pad_b)
      .def_readwrite("pad_l", &Conv2dParams::pad_l)
      .def_readwrite("pad_r", &Conv2dParams::pad_r)
      .def_readwrite("dil_h", &Conv2dParams::dil_h)
      .def_readwrite("dil_w", &Conv2dParams::dil_w)
      .def_readwrite("groups", &Conv2dParams::groups)
      .def("is_depthwise", &Conv2dParams::is_depthwise)
      .def("input_shape", &Conv2dParams::input_shape, "(N, C, H, W)")
      .def("weight_shape", &Conv2dParams::weight_shape, "(K, C/groups, R, S)")
      .def("output_shape", &Conv2dParams::output_shape, "(N, K, OH, OW)")
      .def("flops", &Conv2dParams::flops, "forward floating-point operations (2 per multiply-add)");

  m.def("conv_output_size", &conv_output_size, py::arg("n"), py::arg("k"), py::arg("stride"),
        py::arg("pad_total"), py::arg("dilation"),
        "floor((n + pad_total - dilation*(k-1) - 1) / stride) + 1, or 0 when the kernel does not "
        "fit");
  m.def("conv_transpose_output_size", &conv_transpose_output_size, py::arg("n"), py::arg("k"),
        py::arg("stride"), py::arg("pad_total"), py::arg("dilation"), py::arg("output_padding"),
        "(n - 1)*stride - pad_total + dilation*(k-1) + output_padding + 1");
  m.def("conv2d_params", &conv2d_params, py::arg("input_shape"), py::arg("weight_shape"),
        py::arg("options"), py::arg("op") = "conv2d",
        "validates a conv2d and resolves its padding; ValueError naming the bad argument");
  m.def("conv_transpose2d_params", &conv_transpose2d_params, py::arg("input_shape"),
        py::arg("weight_shape"), py::arg("options"), py::arg("output_padding_h"),
        py::arg("output_padding_w"), py::arg("op") = "conv_transpose2d",
        "the conv2d whose backward-input is this transposed conv (roles of C and K swapped)");
  m.def("conv2d_algorithm", &conv2d_algorithm, py::arg("params"),
        "'<algorithm>: <why>' for the path conv2d takes on these params");

  m.def("conv2d_forward",
        [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& b,
           const Conv2dOptions& opt, const std::optional<Tensor>& residual, double min_value,
           double max_value) {
          Conv2dEpilogue e;  // none and open bounds: the plain conv2d_forward
          e.residual = residual;
          e.min_value = min_value;
          e.max_value = max_value;
          return conv2d_forward(x, w, b, opt, e);
        },
        py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("options"),
        py::arg("residual") = py::none(),
        py::arg("min_value") = -std::numeric_limits<double>::infinity(),
        py::arg("max_value") = std::numeric_limits<double>::infinity(), nogil,
        "y (N,K,OH,OW) = conv2d(x (N,C,H,W), w (K,C/g,R,S)) + b (K); with residual and/or "
        "bounds, min(max_value, max(min_value, y + residual)) in the same call (inference)");
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("grad_output"), py::arg("weight"),
        py::arg("input_shape"), py::arg("options"), nogil, "dx (N,C,H,W) from dy (N,K,OH,OW)");
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("grad_output"), py::arg("x"),
        py::arg("weight_shape"), py::arg("options"), nogil,
        "dw (K,C/g,R,S) from dy and x, summed over the batch");
  m.def("conv2d_backward_input_weight", &conv2d_backward_input_weight, py::arg("grad_output"),
        py::arg("x"), py::arg("weight"), py::arg("options"), nogil,
        "(dx, dw) at once: conv2d_backward_input and conv2d_backward_weight, dy and x read once "
        "where a kernel computes both (depthwise)");
  m.def("conv2d_backward_bias", &conv2d_backward_bias, py::arg("grad_output"), nogil,
        "db (K) = dy summed over N, OH, OW");
  m.def(
      "conv2d_backward",
      [](const Tensor& dy, const Tensor& x, const Tensor& w, const Conv2dOptions& opt,
         const std::array<bool, 3>& output_mask) {
        Conv2dGrads g = conv2d_backward(dy, x, w, opt, output_mask);
        auto opt_t = [](Tensor& t) {
          return t.defined() ? std::optional<Tensor>(std::move(t)) : std::nullopt;
        };
        return std::make_tuple(opt_t(g.input), opt_t(g.weight), opt_t(g.bias));
      },
      py::arg("grad_output"), py::arg("x"), py::arg("weight"), py::arg("options"),
      py::arg("output_mask"), nogil,
      "(dx, dw, db) where output_mask (three bools) asks for them, else None: "
      "conv2d_backward_input, _weight and _bias in one call, dy read once where a kernel "
      "computes several");
  m.def("conv_transpose2d_forward", &conv_transpose2d_forward, py::arg("x"), py::arg("weight"),
        py::arg("bias"), py::arg("options"), py::arg("output_padding_h"),
        py::arg("output_padding_w"), nogil,
        "y (N,C_out,OH,OW) = conv_transpose2d(x (N,C_in,H,W), w (C_in,C_out/g,R,S)) + b");
  m.def("conv_transpose2d_backward_input", &conv_transpose2d_backward_input,
        py::arg("grad_output"), py::arg("weight"), py::arg("input_shape"), py::arg("options"),
        py::arg("output_padding_h"), py::arg("output_padding_w"), nogil,
        "dx (N,C_in,H,W) from dy (N,C_out,OH,OW)");
  m.def("conv_transpose2d_backward_weight", &conv_transpose2d_backward_weight,
        py::arg("grad_output"), py::arg("x"), py::arg("weight_shape"), py::arg("options"),
        py::arg("output_padding_h"), py::arg("output_padding_w"), nogil,
        "dw (C_in,C_out/g,R,S) from dy and x, summed over the batch");

  ref.def("conv2d_forward", &reference::conv2d_forward, py::arg("x"), py::arg("weight"),
          py::arg("bias"), py::arg("options"), nogil, "direct loops, double accumulators");
  ref.def("conv2d_backward_input", &reference::conv2d_backward_input, py::arg("grad_output"),
          py::arg("weight"), py::arg("input_shape"), py::arg("options"), nogil, "gather form");
  ref.def("conv2d_backward_weight", &reference::conv2d_backward_weight, py::arg("grad_output"),
          py::arg("x"), py::arg("weight_shape"), py::arg("options"), nogil, "direct loops");
  ref.def("conv2d_backward_bias", &reference::conv2d_backward_bias, py::arg("grad_output"), nogil,
          "double sum");
  ref.def("conv_transpose2d_forward", &reference::conv_transpose2d_forward, py::arg("x"),
          py::arg("weight"), py::arg("bias"), py::arg("options"), py::arg("output_padding_h"),
          py::arg("output_padding_w"), nogil, "scatter by definition");
  ref.def("conv_transpose2d_backward_input", &reference::conv_transpose2d_backward_input,
          py::arg("grad_output"), py::arg("weight"), py::arg("input_shape"), py::arg("options"),
          py::arg("output_padding_h"), py::arg("output_padding_w"), nogil, "by definition");
  ref.def("conv_transpose2d_backward_weight", &reference::conv_transpose2d_backward_weight,
          py::arg("grad_output"), py::arg("x"), py::arg("weight_shape"), py::arg("options"),
          py::arg("output_padding_h"), py::arg("output_padding_w"), nogil, "by definition");
}

}  // namespace cnncore::bindings
