// Shared translation helpers for the binding files: numpy <-> Tensor, optional tensors.
// Translation only: no math and no shape logic here.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cnncore/cnncore.hpp"

namespace py = pybind11;

namespace cnncore::bindings {

// Wraps a numpy array's memory without copying (float32 or int64, any strides); the array stays
// alive as long as a Tensor refers to it.
Tensor tensor_from_numpy(const py::array& arr);
// A numpy view of the tensor's memory (NCHW; a blocked tensor is converted first).
py::array tensor_to_numpy(const Tensor& t);

// Each family registers its functions in one of these (one file each).
void bind_tensor(py::module_& m);
void bind_runtime(py::module_& m);
void bind_activation(py::module_& m, py::module_& ref);
void bind_conv(py::module_& m, py::module_& ref);
void bind_linalg(py::module_& m, py::module_& ref);
void bind_pool(py::module_& m, py::module_& ref);
void bind_resample(py::module_& m, py::module_& ref);
void bind_norm(py::module_& m, py::module_& ref);
void bind_loss(py::module_& m, py::module_& ref);
void bind_tensor_ops(py::module_& m, py::module_& ref);
void bind_optim(py::module_& m, py::module_& ref);
void bind_graph(py::module_& m);
void bind_cuda(py::module_& m);

}  // namespace cnncore::bindings
