// Process-wide runtime state: threads, the SIMD path in use, the random generator, build facts.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cnncore/tensor.hpp"

#define CNNCORE_VERSION_MAJOR 0
#define CNNCORE_VERSION_MINOR 1
#define CNNCORE_VERSION_PATCH 0

namespace cnncore {

CNNCORE_API const char* version();

// ---- threads ----
// n >= 1; the default is OMP_NUM_THREADS or the number of cores. Without OpenMP always 1.
CNNCORE_API void set_num_threads(int n);
CNNCORE_API int get_num_threads();
// With deterministic algorithms on, kernels whose summation order would follow the thread count
// (today: the conv2d / conv_transpose2d weight gradient when threads split the batch) use a fixed
// order instead, so results are bit-identical for every thread count (torch's name and meaning).
CNNCORE_API void set_deterministic_algorithms(bool on);
CNNCORE_API bool deterministic_algorithms();

// ---- SIMD dispatch ----
// Kernels are compiled for each ISA below (those the compiler supports) and chosen at run time.
// The choice is made once from CPUID, lowered by CNNCORE_ISA=baseline|avx2|avx512 in the
// environment, and can be changed with set_isa() (tests run every path in one process).
enum class Isa : int { Baseline = 0, Avx2 = 1, Avx512 = 2 };
CNNCORE_API const char* isa_name(Isa isa);
CNNCORE_API Isa isa_from_name(const std::string& name);  // ValueError on unknown names
CNNCORE_API Isa active_isa();
// Selects a path; ValueError if it was not compiled in or this CPU cannot run it.
CNNCORE_API void set_isa(Isa isa);
CNNCORE_API std::vector<Isa> available_isas();  // compiled in AND supported by this CPU
CNNCORE_API std::vector<Isa> compiled_isas();
CNNCORE_API bool cpu_supports(Isa isa);

// ---- random numbers ----
// A counter-based generator: element i of a draw is a hash of (seed, offset + i), so results do
// not depend on the thread count. State = (seed, offset); save and restore it for exact resume.
struct RngState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};
CNNCORE_API void manual_seed(uint64_t seed);
CNNCORE_API RngState get_rng_state();
CNNCORE_API void set_rng_state(RngState state);
// Reserves n draws from the global stream and returns the state to draw them from.
CNNCORE_API RngState rng_reserve(uint64_t n);
CNNCORE_API Tensor randn(const Shape& shape);                  // N(0, 1)
CNNCORE_API Tensor rand(const Shape& shape);                   // U[0, 1)
CNNCORE_API void uniform_(Tensor& t, float low, float high);   // in place
CNNCORE_API void normal_(Tensor& t, float mean, float std);    // in place
// The primitive the draws above use: uniform in [0, 1) / standard normal for counter index i.
CNNCORE_API float rng_uniform(RngState s, uint64_t i);
// rng_normal: draw i of a stream that consumes one uniform per normal (Box-Muller pairs (2j,
// 2j+1)), so reserve n rounded up to even for n normals.
CNNCORE_API float rng_normal(RngState s, uint64_t i);

// ---- facts about the build and the machine ----
// The fp32 FMA throughput of the active SIMD path on get_num_threads() threads, in GFLOP/s: the
// best of repeated rounds of independent FMA chains lasting about `seconds` in all. A ceiling no
// kernel can pass, measured (not assumed) so benchmarks can report "% of peak".
CNNCORE_API double measure_fma_peak_gflops(double seconds = 0.5);

// Keys: version, compiler, isas_compiled, isa, cpu_isas, openmp, num_threads, cuda, notes.
CNNCORE_API std::map<std::string, std::string> build_info();

}  // namespace cnncore
