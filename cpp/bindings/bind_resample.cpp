#include "common.hpp"
#include "cpu/reference/resample.hpp"

namespace cnncore::bindings {

void bind_resample(py::module_& m, py::module_& ref) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  py::enum_<InterpMode>(m, "InterpMode", "interpolation mode")
      .value("nearest", InterpMode::Nearest)
      .value("bilinear", InterpMode::Bilinear);
  py::enum_<PadMode>(m, "PadMode", "padding mode")
      .value("constant", PadMode::Constant)
      .value("reflect", PadMode::Reflect)
      .value("replicate", PadMode::Replicate);

  m.def("interpolate_forward", &interpolate_forward, py::arg("x"), py::arg("out_h"), py::arg("out_w"),
        py::arg("mode"), py::arg("align_corners"), py::arg("scale_h") = 0.0, py::arg("scale_w") = 0.0,
        nogil, "resize (N,C,H,W) to (N,C,out_h,out_w); scale_* > 0: the user's scale_factor");
  m.def("interpolate_backward", &interpolate_backward, py::arg("grad_output"), py::arg("input_shape"),
        py::arg("mode"), py::arg("align_corners"), py::arg("scale_h") = 0.0, py::arg("scale_w") = 0.0,
        nogil, "dx of interpolate");
  m.def("pad_forward", &pad_forward, py::arg("x"), py::arg("pad"), py::arg("mode"),
        py::arg("value") = 0.0f, nogil, "pad the last dims: pad = (left, right[, top, bottom])");
  m.def("pad_backward", &pad_backward, py::arg("grad_output"), py::arg("input_shape"), py::arg("pad"),
        py::arg("mode"), nogil, "dx of pad");
  m.def("pad_output_shape", &pad_output_shape, py::arg("input_shape"), py::arg("pad"), py::arg("mode"),
        "validates pad for input_shape and returns the padded shape");

  ref.def("interpolate_forward", &reference::interpolate_forward, py::arg("x"), py::arg("out_h"),
          py::arg("out_w"), py::arg("mode"), py::arg("align_corners"), py::arg("scale_h") = 0.0,
          py::arg("scale_w") = 0.0, nogil, "reference interpolate");
  ref.def("interpolate_backward", &reference::interpolate_backward, py::arg("grad_output"),
          py::arg("input_shape"), py::arg("mode"), py::arg("align_corners"), py::arg("scale_h") = 0.0,
          py::arg("scale_w") = 0.0, nogil, "reference interpolate backward");
  ref.def("pad_forward", &reference::pad_forward, py::arg("x"), py::arg("pad"), py::arg("mode"),
          py::arg("value") = 0.0f, nogil, "reference pad");
  ref.def("pad_backward", &reference::pad_backward, py::arg("grad_output"), py::arg("input_shape"),
          py::arg("pad"), py::arg("mode"), nogil, "reference pad backward");
}

}  // namespace cnncore::bindings
