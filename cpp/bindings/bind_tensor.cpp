#include "common.hpp"

namespace cnncore::bindings {

Tensor tensor_from_numpy(const py::array& arr) {
  DType dt;
  if (arr.dtype().is(py::dtype::of<float>()))
    dt = DType::Float32;
  else if (arr.dtype().is(py::dtype::of<int64_t>()))
    dt = DType::Int64;
  else
    throw TypeError(detail::concat("from_numpy: expected a float32 or int64 array, but got ",
                                   std::string(py::str(arr.dtype()))));
  const auto es = static_cast<py::ssize_t>(dtype_size(dt));
  Shape shape(arr.ndim()), strides(arr.ndim());
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    shape[i] = arr.shape(i);
    CNNCORE_CHECK_VALUE(arr.strides(i) % es == 0, "from_numpy: array strides must be multiples of ",
                        es, " bytes, but dimension ", i, " has stride ", arr.strides(i));
    strides[i] = arr.strides(i) / es;
  }
  // Keep the array alive while the tensor lives; the release may run without the GIL held.
  auto* keep = new py::object(arr);
  return Tensor::from_blob(const_cast<void*>(arr.data()), shape, strides, dt, [keep](void*) {
    py::gil_scoped_acquire gil;
    delete keep;
  });
}

py::array tensor_to_numpy(const Tensor& t_in) {
  check_defined(t_in, "numpy", "tensor");
  CNNCORE_CHECK_TYPE(!t_in.is_cuda(), "can't convert ", t_in.device().str(),
                     " device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host "
                     "memory first.");
  Tensor t = t_in.block() ? t_in.to_strided() : t_in;
  const auto es = static_cast<py::ssize_t>(dtype_size(t.dtype()));
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides;
  for (int64_t s : t.strides()) strides.push_back(s * es);
  auto* owner = new std::shared_ptr<Storage>(t.storage());
  py::capsule base(owner, [](void* p) { delete static_cast<std::shared_ptr<Storage>*>(p); });
  py::dtype dt = t.dtype() == DType::Float32 ? py::dtype::of<float>() : py::dtype::of<int64_t>();
  return py::array(dt, shape, strides, t.raw_data(), base);
}

void bind_tensor(py::module_& m) {
  // Copies and fills can be long for large tensors and touch no Python object: without the GIL.
  auto nogil = py::call_guard<py::gil_scoped_release>();
  py::class_<Tensor>(m, "Tensor", py::buffer_protocol(), "storage of a cnncore tensor (C++)")
      .def_buffer([](Tensor& t) -> py::buffer_info {
        CNNCORE_CHECK_TYPE(!t.is_cuda(), "can't export a ", t.device().str(),
                           " tensor's memory to the buffer protocol; use Tensor.cpu() first");
        Tensor s = t.block() ? t.to_strided() : t;
        if (t.block()) t = s;  // keep the converted buffer alive through the exporting tensor
        const auto es = static_cast<py::ssize_t>(dtype_size(s.dtype()));
        std::vector<py::ssize_t> shape(s.shape().begin(), s.shape().end()), strides;
        for (int64_t st : s.strides()) strides.push_back(st * es);
        return py::buffer_info(s.raw_data(), es,
                               s.dtype() == DType::Float32 ? py::format_descriptor<float>::format()
                                                           : py::format_descriptor<int64_t>::format(),
                               s.dim(), shape, strides);
      })
      .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape())); })
      .def_property_readonly("strides",
                             [](const Tensor& t) { return py::tuple(py::cast(t.strides())); })
      .def_property_readonly("dtype", [](const Tensor& t) { return dtype_name(t.dtype()); })
      .def_property_readonly("ndim", &Tensor::dim)
      .def_property_readonly("block", &Tensor::block, "0 for strided, else the NCHWc channel block")
      .def_property_readonly("device", [](const Tensor& t) { return t.device().str(); })
      .def("to", [](const Tensor& t, const std::string& device) {
        const Device d = Device::parse(device, "to");
        py::gil_scoped_release nogil_scope;
        return t.to(d);
      }, py::arg("device"), "a copy on the device (self when already there)")
      .def("numel", &Tensor::numel)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("numpy", &tensor_to_numpy, "a numpy view of the memory (NCHW)")
      .def("contiguous", &Tensor::contiguous, nogil)
      .def("clone", &Tensor::clone, nogil)
      .def("view", &Tensor::view, py::arg("shape"))
      .def("reshape", &Tensor::reshape, py::arg("shape"))
      .def("permute", &Tensor::permute, py::arg("dims"))
      .def("narrow", &Tensor::narrow, py::arg("dim"), py::arg("start"), py::arg("length"))
      .def("as_strided", &Tensor::as_strided, py::arg("shape"), py::arg("strides"),
           py::arg("offset"))
      .def("expand", &Tensor::expand, py::arg("shape"))
      .def("to_blocked", &Tensor::to_blocked, py::arg("block"), nogil)
      .def("to_strided", &Tensor::to_strided, nogil)
      .def("copy_", &Tensor::copy_, py::arg("src"), nogil)
      .def("fill_", &Tensor::fill_, py::arg("value"), nogil)
      .def("zero_", &Tensor::zero_, nogil)
      .def("data_ptr",
           [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.device_data()); })
      .def("__repr__", [](const Tensor& t) {
        return detail::concat("_core.Tensor(shape=", shape_str(t.shape()), ", dtype=",
                              dtype_name(t.dtype()), t.block() ? ", blocked" : "",
                              t.is_cuda() ? ", device=" + t.device().str() : "", ")");
      });

  m.def("from_numpy", &tensor_from_numpy, py::arg("array"),
        "wraps a float32/int64 numpy array without copying");
  m.def("empty", [](const Shape& s, const std::string& dt, const std::string& dev) {
          return Tensor::empty(s, dt == "int64" ? DType::Int64 : DType::Float32,
                               Device::parse(dev, "empty"));
        }, py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = "cpu");
  m.def("zeros", [](const Shape& s, const std::string& dt, const std::string& dev) {
          return Tensor::zeros(s, dt == "int64" ? DType::Int64 : DType::Float32,
                               Device::parse(dev, "zeros"));
        }, py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = "cpu");
  m.def("full", &Tensor::full, py::arg("shape"), py::arg("value"));
  m.def("shape_numel", [](const Shape& s) { return shape_numel(s, "shape"); }, py::arg("shape"));
  m.def("empty_host_cache", &empty_host_cache,
        "frees the cached host blocks (>= 4 MiB) kept for reuse; returns the bytes released");
  m.def("host_cache_bytes", &host_cache_bytes, "bytes of freed host blocks held for reuse");
}

}  // namespace cnncore::bindings
