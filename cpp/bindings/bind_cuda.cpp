// The CUDA backend's runtime surface (cnncore.cuda builds on it). Present in every build: a build
// without CUDA answers compiled() == False and device_count() == 0.
#include "common.hpp"
#include "cuda_api.hpp"

namespace cnncore::bindings {

void bind_cuda(py::module_& m) {
  m.def("cuda_compiled", &cuda::compiled, "whether this build has the CUDA backend");
  m.def("cuda_device_count", &cuda::device_count, "usable CUDA devices (0 on any driver error)");
  m.def("cuda_unavailable_reason", &cuda::unavailable_reason,
        "why there is no CUDA device ('' when there is one)");
  m.def("cuda_current_device", &cuda::current_device);
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("cuda_synchronize", &cuda::synchronize, py::arg("device"), nogil);
  m.def("cuda_empty_cache", &cuda::empty_cache, nogil);
  m.def("cuda_memory_allocated", &cuda::memory_allocated, py::arg("device"));
  m.def("cuda_max_memory_allocated", &cuda::max_memory_allocated, py::arg("device"));
  m.def("cuda_memory_reserved", &cuda::memory_reserved, py::arg("device"));
  m.def("cuda_reset_peak_memory_stats", &cuda::reset_peak_memory_stats, py::arg("device"));
  m.def("parse_device", [](const std::string& s) { return Device::parse(s).str(); },
        py::arg("device"), "the canonical name of a device string ('cuda' -> 'cuda:0')");
  // ---- cuda-c: TF32 switches (cnncore.backends validates the values) ----
  m.def("cuda_set_matmul_precision", &cuda::set_matmul_precision, py::arg("precision"),
        "0 highest (fp32), 1 high, 2 medium (TF32 allowed for linear)");
  m.def("cuda_matmul_precision", &cuda::matmul_precision);
  m.def("cuda_set_conv_allow_tf32", &cuda::set_conv_allow_tf32, py::arg("allow"));
  m.def("cuda_conv_allow_tf32", &cuda::conv_allow_tf32);
  m.def("cuda_tf32_supported", &cuda::tf32_supported, py::arg("device"),
        "whether the device runs the TF32 tensor-core kernels (compute capability >= 8.0)");
  // ---- end cuda-c ----
}

}  // namespace cnncore::bindings
