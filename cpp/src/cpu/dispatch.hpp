// Run-time ISA dispatch, decided in one place.
//
// A kernel family declares its entry points once per ISA namespace with CNNCORE_DECLARE_ISA_KERNELS,
// writes the body once in <family>_kernels.inc, and compiles that body three times:
// <family>_baseline.cpp (no flags), <family>_avx2.cpp and <family>_avx512.cpp (flags from
// cmake/CnncoreIsa.cmake). The caller then writes CNNCORE_ISA_DISPATCH(fn(args)), which calls the
// variant for active_isa(): never one the CPU lacks, since active_isa() only returns paths that
// are both compiled and supported.
#pragma once

#include "cnncore/runtime.hpp"

#if defined(CNNCORE_BUILD_AVX512)
#define CNNCORE_IF_AVX512(...) __VA_ARGS__
#else
#define CNNCORE_IF_AVX512(...)
#endif
#if defined(CNNCORE_BUILD_AVX2)
#define CNNCORE_IF_AVX2(...) __VA_ARGS__
#else
#define CNNCORE_IF_AVX2(...)
#endif

#define CNNCORE_DECLARE_ISA_KERNELS(...) \
  namespace baseline {                   \
  __VA_ARGS__                            \
  }                                      \
  namespace avx2 {                       \
  __VA_ARGS__                            \
  }                                      \
  namespace avx512 {                     \
  __VA_ARGS__                            \
  }

#define CNNCORE_ISA_DISPATCH(call)                                         \
  switch (::cnncore::active_isa()) {                                       \
    CNNCORE_IF_AVX512(case ::cnncore::Isa::Avx512: return avx512::call;)   \
    CNNCORE_IF_AVX2(case ::cnncore::Isa::Avx2: return avx2::call;)         \
    default: return baseline::call;                                        \
  }

// The same for a statement (no return): CNNCORE_ISA_CALL(relu_forward(x, y, n));
#define CNNCORE_ISA_CALL(call)                                                     \
  switch (::cnncore::active_isa()) {                                               \
    CNNCORE_IF_AVX512(case ::cnncore::Isa::Avx512: avx512::call; break;)           \
    CNNCORE_IF_AVX2(case ::cnncore::Isa::Avx2: avx2::call; break;)                 \
    default: baseline::call; break;                                                \
  }
