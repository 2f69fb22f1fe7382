#include "common.hpp"
#include "cpu/reference/pool.hpp"

namespace cnncore::bindings {

void bind_pool(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  py::class_<Pool2dOptions>(m, "Pool2dOptions", "kernel, stride (0 = kernel), padding, dilation, "
                                                "ceil_mode, count_include_pad, divisor_override (0 = none)")
      .def(py::init<>())
      .def_readwrite("kernel_h", &Pool2dOptions::kernel_h)
      .def_readwrite("kernel_w", &Pool2dOptions::kernel_w)
      .def_readwrite("stride_h", &Pool2dOptions::stride_h)
      .def_readwrite("stride_w", &Pool2dOptions::stride_w)
      .def_readwrite("pad_h", &Pool2dOptions::pad_h)
      .def_readwrite("pad_w", &Pool2dOptions::pad_w)
      .def_readwrite("dilation_h", &Pool2dOptions::dilation_h)
      .def_readwrite("dilation_w", &Pool2dOptions::dilation_w)
      .def_readwrite("ceil_mode", &Pool2dOptions::ceil_mode)
      .def_readwrite("count_include_pad", &Pool2dOptions::count_include_pad)
      .def_readwrite("divisor_override", &Pool2dOptions::divisor_override);

  m.def("pool_output_size", &pool_output_size, py::arg("n"), py::arg("kernel"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "PyTorch's pooling output size along one dim (may be <= 0; not validated)");
  m.def("pool2d_output_shape",
        [](const Shape& input, const Pool2dOptions& opt, const std::string& op) {
          return pool2d_params(input, opt, op.c_str()).output_shape();
        },
        py::arg("input_shape"), py::arg("options"), py::arg("op") = "max_pool2d",
        "validates the options for input_shape and returns the pooled shape");
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("x"), py::arg("options"), nogil,
        "(y, indices int64 h*W+w) of max pooling");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("grad_output"), py::arg("indices"),
        py::arg("input_shape"), nogil, "dx: grad_output scattered to indices");
  m.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("x"), py::arg("options"), nogil,
        "average pooling");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_output"), py::arg("input_shape"),
        py::arg("options"), nogil, "dx of average pooling");
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward, py::arg("x"), py::arg("out_h"),
        py::arg("out_w"), nogil, "adaptive average pooling to (out_h, out_w)");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("grad_output"),
        py::arg("input_shape"), nogil, "dx of adaptive average pooling");
  m.def("adaptive_max_pool2d_forward", &adaptive_max_pool2d_forward, py::arg("x"), py::arg("out_h"),
        py::arg("out_w"), nogil, "(y, indices) of adaptive max pooling to (out_h, out_w)");
  m.def("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward, py::arg("grad_output"),
        py::arg("indices"), py::arg("input_shape"), nogil, "dx: grad_output scattered to indices");

  ref.def("max_pool2d_forward", &reference::max_pool2d_forward, py::arg("x"), py::arg("options"), nogil,
          "reference max pooling");
  ref.def("max_pool2d_backward", &reference::max_pool2d_backward, py::arg("grad_output"),
          py::arg("indices"), py::arg("input_shape"), nogil, "reference max pooling backward");
  ref.def("avg_pool2d_forward", &reference::avg_pool2d_forward, py::arg("x"), py::arg("options"), nogil,
          "reference average pooling");
  ref.def("avg_pool2d_backward", &reference::avg_pool2d_backward, py::arg("grad_output"),
          py::arg("input_shape"), py::arg("options"), nogil, "reference average pooling backward");
  ref.def("adaptive_avg_pool2d_forward", &reference::adaptive_avg_pool2d_forward, py::arg("x"),
          py::arg("out_h"), py::arg("out_w"), nogil, "reference adaptive average pooling");
  ref.def("adaptive_avg_pool2d_backward", &reference::adaptive_avg_pool2d_backward,
          py::arg("grad_output"), py::arg("input_shape"), nogil,
          "reference adaptive average pooling backward");
  ref.def("adaptive_max_pool2d_forward", &reference::adaptive_max_pool2d_forward, py::arg("x"),
          py::arg("out_h"), py::arg("out_w"), nogil, "reference adaptive max pooling");
  ref.def("adaptive_max_pool2d_backward", &reference::adaptive_max_pool2d_backward,
          py::arg("grad_output"), py::arg("indices"), py::arg("input_shape"), nogil,
          "reference adaptive max pooling backward");
}

}  // namespace cnncore::bindings
