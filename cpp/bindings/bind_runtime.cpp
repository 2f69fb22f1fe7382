#include "common.hpp"

namespace cnncore::bindings {

void bind_runtime(py::module_& m) {
  m.def("version", &version);
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "threads used by every kernel");
  m.def("get_num_threads", &get_num_threads);
  m.def("set_deterministic_algorithms", &set_deterministic_algorithms, py::arg("mode"),
        "fixed summation orders, independent of the thread count");
  m.def("deterministic_algorithms", &deterministic_algorithms);
  m.def("build_info", &build_info, "facts about this build and machine");
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); },
        "the SIMD path kernels take now");
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, py::arg("name"),
        "force a SIMD path: 'baseline', 'avx2' or 'avx512' (must be available)");
  m.def("available_isas", [] {
    std::vector<std::string> v;
    for (Isa i : available_isas()) v.emplace_back(isa_name(i));
    return v;
  }, "SIMD paths compiled in and supported by this CPU");
  m.def("measure_fma_peak_gflops", &measure_fma_peak_gflops, py::arg("seconds") = 0.5,
        py::call_guard<py::gil_scoped_release>(),
        "fp32 FMA peak of the active SIMD path on the current thread count, in GFLOP/s");
  m.def("manual_seed", &manual_seed, py::arg("seed"));
  m.def("get_rng_state", [] {
    RngState s = get_rng_state();
    return py::make_tuple(s.seed, s.offset);
  });
  m.def("set_rng_state", [](uint64_t seed, uint64_t offset) { set_rng_state({seed, offset}); },
        py::arg("seed"), py::arg("offset"));
  auto nogil = py::call_guard<py::gil_scoped_release>();
  m.def("randn", &randn, py::arg("shape"), nogil);
  m.def("rand", &rand, py::arg("shape"), nogil);
  m.def("uniform_", &uniform_, py::arg("tensor"), py::arg("low"), py::arg("high"), nogil);
  m.def("normal_", &normal_, py::arg("tensor"), py::arg("mean"), py::arg("std"), nogil);
}

}  // namespace cnncore::bindings
