// cnncore._core: the pybind11 module. Each op family binds itself in bind_<family>.cpp; this file
// only creates the module, the `reference` submodule (the oracle kernels, for tests) and maps
// cnncore::Error subclasses to Python exceptions.
#include "common.hpp"

PYBIND11_MODULE(_core, m) {
  using namespace cnncore;
  m.doc() = "cnncore's C++ core: tensors and kernels. Use the cnncore package, not this module.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cnncore::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const cnncore::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const cnncore::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const cnncore::MemoryError& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const cnncore::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (const std::bad_alloc& e) {
      // A kernel's workspace (std::vector) that did not fit; pybind11 would say only "bad_alloc".
      PyErr_SetString(PyExc_MemoryError, "cnncore: out of memory (std::bad_alloc)");
    }
  });
  py::module_ ref = m.def_submodule("reference", "naive reference kernels (the test oracle)");
  bindings::bind_tensor(m);
  bindings::bind_runtime(m);
  bindings::bind_activation(m, ref);
  bindings::bind_conv(m, ref);
  bindings::bind_linalg(m, ref);
  bindings::bind_pool(m, ref);
  bindings::bind_resample(m, ref);
  bindings::bind_norm(m, ref);
  bindings::bind_loss(m, ref);
  bindings::bind_tensor_ops(m, ref);
  bindings::bind_optim(m, ref);
  bindings::bind_graph(m);
  bindings::bind_cuda(m);
}
