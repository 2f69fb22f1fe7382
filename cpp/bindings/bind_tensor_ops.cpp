#include "common.hpp"
#include "cpu/reference/tensor_ops.hpp"

namespace cnncore::bindings {

namespace {

// Binds the family into m (fast kernels) or ref (reference twins); ops are named by strings.
template <class Impl>
void bind_family(py::module_& m) {
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("broadcast_shapes",
        [](const Shape& a, const Shape& b, const std::string& op) {
          return Impl::broadcast_shapes(a, b, op.c_str());
        },
        py::arg("a"), py::arg("b"), py::arg("op") = "broadcast",
        "the NumPy broadcast of two shapes (ValueError naming op when they clash)");
  m.def("binary",
        [](const std::string& op, const Tensor& a, const Tensor& b) {
          const BinaryOp o = binary_op_from_name(op);
          py::gil_scoped_release release;
          return Impl::binary(o, a, b);
        },
        py::arg("op"), py::arg("a"), py::arg("b"),
        "a (op) b with broadcasting; op: add sub mul div pow maximum minimum eq ne lt le gt "
            "ge (comparisons give 1.0 / 0.0)");
  m.def("binary_scalar",
        [](const std::string& op, const Tensor& a, double s, bool scalar_first) {
          const BinaryOp o = binary_op_from_name(op);
          py::gil_scoped_release release;
          return Impl::binary_scalar(o, a, s, scalar_first);
        },
        py::arg("op"), py::arg("a"), py::arg("scalar"), py::arg("scalar_first") = false,
        "a (op) scalar, or scalar (op) a when scalar_first");
  m.def("unary",
        [](const std::string& op, const Tensor& a) {
          const UnaryOp o = unary_op_from_name(op);
          py::gil_scoped_release release;
          return Impl::unary(o, a);
        },
        py::arg("op"), py::arg("a"),
        "op(a); op: neg exp log sqrt abs square reciprocal sign");
  for (const char* name : {"add", "sub", "mul", "div"}) {
    const BinaryOp o = binary_op_from_name(name);
    m.def(name, [o](const Tensor& a, const Tensor& b) { return Impl::binary(o, a, b); },
          py::arg("a"), py::arg("b"), nogil, "elementwise with broadcasting; a new tensor");
  }
  m.def("add_",
        [](Tensor& a, const Tensor& b, double alpha) { Impl::add_(a, b, alpha); },
        py::arg("a"), py::arg("b"), py::arg("alpha") = 1.0, nogil,
        "in place a += alpha * b (b broadcast to a; a contiguous)");
  m.def("sum", &Impl::sum, py::arg("x"), py::arg("dims") = std::vector<int64_t>{},
        py::arg("keepdim") = false, nogil, "sum over dims (empty = all), double accumulation");
  m.def("mean", &Impl::mean, py::arg("x"), py::arg("dims") = std::vector<int64_t>{},
        py::arg("keepdim") = false, nogil, "mean over dims (empty = all)");
  m.def("sum_to_shape", &Impl::sum_to_shape, py::arg("grad"), py::arg("shape"), nogil,
        "sums a broadcast gradient back to shape (the backward of broadcasting)");
  m.def("max_dim", &Impl::max_dim, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false,
        nogil, "(values, int64 indices) of the max along dim; first index wins ties");
  m.def("argmax", &Impl::argmax, py::arg("x"), py::arg("dim"), py::arg("keepdim") = false, nogil,
        "int64 indices of the max along dim");
  m.def("cat", &Impl::cat, py::arg("tensors"), py::arg("dim") = 0, nogil,
        "joins tensors along an existing dim");
  m.def("stack", &Impl::stack, py::arg("tensors"), py::arg("dim") = 0, nogil,
        "joins same-shape tensors along a new dim");
  m.def("contiguous", &Impl::contiguous, py::arg("x"), nogil,
        "a contiguous copy of a strided view (x itself when already contiguous)");
}

// The fast kernels and their reference twins share signatures; one struct per namespace lets
// bind_family register either set under the same names.
#define CNNCORE_TENSOR_OPS_OF(Name, ns)                                                      \
  struct Name {                                                                              \
    static Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {          \
      return ns::broadcast_shapes(a, b, op);                                                 \
    }                                                                                        \
    static Tensor binary(BinaryOp o, const Tensor& a, const Tensor& b) {                     \
      return ns::binary(o, a, b);                                                            \
    }                                                                                        \
    static Tensor binary_scalar(BinaryOp o, const Tensor& a, double s, bool first) {         \
      return ns::binary_scalar(o, a, s, first);                                              \
    }                                                                                        \
    static Tensor unary(UnaryOp o, const Tensor& a) { return ns::unary(o, a); }              \
    static void add_(Tensor& a, const Tensor& b, double alpha) { ns::add_(a, b, alpha); }    \
    static Tensor sum(const Tensor& x, const std::vector<int64_t>& d, bool k) {              \
      return ns::sum(x, d, k);                                                               \
    }                                                                                        \
    static Tensor mean(const Tensor& x, const std::vector<int64_t>& d, bool k) {             \
      return ns::mean(x, d, k);                                                              \
    }                                                                                        \
    static Tensor sum_to_shape(const Tensor& g, const Shape& s) {                            \
      return ns::sum_to_shape(g, s);                                                         \
    }                                                                                        \
    static std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t d, bool k) {           \
      return ns::max_dim(x, d, k);                                                           \
    }                                                                                        \
    static Tensor argmax(const Tensor& x, int64_t d, bool k) { return ns::argmax(x, d, k); } \
    static Tensor cat(const std::vector<Tensor>& t, int64_t d) { return ns::cat(t, d); }     \
    static Tensor stack(const std::vector<Tensor>& t, int64_t d) { return ns::stack(t, d); } \
    static Tensor contiguous(const Tensor& x) { return ns::contiguous(x); }                  \
  };

CNNCORE_TENSOR_OPS_OF(Fast, cnncore)
CNNCORE_TENSOR_OPS_OF(Ref, reference)
#undef CNNCORE_TENSOR_OPS_OF

}  // namespace

void bind_tensor_ops(py::module_& m, py::module_& ref) {
  bind_family<Fast>(m);
  bind_family<Ref>(ref);
}

}  // namespace cnncore::bindings
