// The measured fp32 FMA peak of this machine for the active SIMD path: what benchmarks/ divide
// by for "% of peak", measured rather than assumed because the machines here change from day to
// day (an AVX-512 Xeon, a Zen 4 EPYC with double-pumped AVX-512, an AVX2-only EPYC).
#include <algorithm>
#include <chrono>
#include <vector>

#include "cnncore/runtime.hpp"
#include "cpu/peak_kernels.hpp"
#include "parallel.hpp"

namespace cnncore {

namespace {

double fma_chains(int64_t iters, float* sink) { CNNCORE_ISA_DISPATCH(fma_chains(iters, sink)); }

// Wall seconds for every thread of the pool to run `iters` rounds once; flops via *flops.
double timed_round(int64_t iters, int64_t threads, double* flops) {
  std::vector<float> sinks(static_cast<size_t>(threads) * 16, 0.0f);  // a cache line apart
  std::vector<double> done(static_cast<size_t>(threads), 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  parallel_region(threads, [&](int64_t tid, int64_t) {
    done[tid] = fma_chains(iters, &sinks[tid * 16]);
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *flops = 0;
  for (double d : done) *flops += d;
  return s;
}

}  // namespace

double measure_fma_peak_gflops(double seconds) {
  CNNCORE_CHECK_VALUE(seconds > 0 && seconds <= 60, "measure_fma_peak_gflops: seconds must be in "
                      "(0, 60], but got ", seconds);
  const int64_t threads = get_num_threads();
  double flops = 0;
  int64_t iters = 1 << 14;
  // Grow the round until it lasts ~1/8 of the budget, so timer and wake-up costs vanish.
  while (timed_round(iters, threads, &flops) < seconds / 8 && iters < (int64_t{1} << 40))
    iters *= 2;
  double best = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {  // the best round: other processes on a shared machine only ever make a round slower
    const double s = timed_round(iters, threads, &flops);
    best = std::max(best, flops / s / 1e9);
  } while (std::chrono::steady_clock::now() < end);
  return best;
}

}  // namespace cnncore
