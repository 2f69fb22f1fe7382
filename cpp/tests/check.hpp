// A minimal test harness for the C++ tests: CHECK prints the failing expression and location and
// counts failures; main returns non-zero if any failed. Fixed seed via cnncore::manual_seed.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "cnncore/cnncore.hpp"

namespace cnncore_test {
inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}
}  // namespace cnncore_test

#define CHECK(cond, ...)                                                              \
  do {                                                                                \
    ++cnncore_test::checks();                                                         \
    if (!(cond)) {                                                                    \
      ++cnncore_test::failures();                                                     \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, \
                   cnncore::detail::concat("" __VA_ARGS__).c_str());                  \
    }                                                                                 \
  } while (0)

#define CHECK_THROWS(Type, stmt)                                                        \
  do {                                                                                  \
    bool _thrown = false;                                                               \
    try {                                                                               \
      stmt;                                                                             \
    } catch (const Type&) {                                                             \
      _thrown = true;                                                                   \
    }                                                                                   \
    CHECK(_thrown, #stmt " should throw " #Type);                                       \
  } while (0)

inline int report(const char* name) {
  std::printf("%s: %d checks, %d failed\n", name, cnncore_test::checks(), cnncore_test::failures());
  return cnncore_test::failures() ? 1 : 0;
}

// Max |a - b| over two same-shape float tensors (any layout).
inline double max_abs_diff(const cnncore::Tensor& a, const cnncore::Tensor& b) {
  cnncore::Tensor x = a.contiguous(), y = b.contiguous();
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i)
    m = std::fmax(m, std::fabs(double(x.data<float>()[i]) - double(y.data<float>()[i])));
  return m;
}
