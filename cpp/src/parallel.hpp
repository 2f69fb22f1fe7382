// The one way kernels use threads: parallel_for over [begin, end) in contiguous chunks.
// OpenMP when built with it, serial otherwise; ranges smaller than `grain` run on the calling
// thread, so tiny ops never wake the pool. fn(chunk_begin, chunk_end) must not throw.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnncore/runtime.hpp"

#if defined(CNNCORE_USE_OPENMP)
#include <omp.h>
#endif

namespace cnncore {

template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
#if defined(CNNCORE_USE_OPENMP)
  const int64_t max_threads = get_num_threads();
  const int64_t nt = std::min<int64_t>(max_threads, (n + std::max<int64_t>(grain, 1) - 1) /
                                                        std::max<int64_t>(grain, 1));
  if (nt > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(static_cast<int>(nt))
    {
      const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
      const int64_t chunk = (n + T - 1) / T;
      const int64_t b = begin + t * chunk, e = std::min(end, b + chunk);
      if (b < e) fn(b, e);
    }
    return;
  }
#endif
  fn(begin, end);
}

// Runs fn(thread_id, num_threads) once on each of the pool's threads (one when serial).
template <class F>
void parallel_region(int64_t max_useful, const F& fn) {
#if defined(CNNCORE_USE_OPENMP)
  const int64_t nt = std::min<int64_t>(get_num_threads(), std::max<int64_t>(max_useful, 1));
  if (nt > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(static_cast<int>(nt))
    fn(static_cast<int64_t>(omp_get_thread_num()), static_cast<int64_t>(omp_get_num_threads()));
    return;
  }
#endif
  fn(int64_t{0}, int64_t{1});
}

}  // namespace cnncore
