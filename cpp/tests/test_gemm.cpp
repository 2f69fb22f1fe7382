// The packed SGEMM against the naive reference without Python: ragged sizes, transposes, alpha and
// beta (beta = 0 with NaN in C), padded leading dimensions, every ISA path, 1 and 2 threads.
#include <cmath>
#include <limits>
#include <vector>

#include "check.hpp"
#include "cpu/gemm.hpp"
#include "cpu/reference/linalg.hpp"

using namespace cnncore;

namespace {

std::vector<float> random_vec(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  const RngState s{seed, 0};
  for (int64_t i = 0; i < n; ++i) v[i] = rng_uniform(s, i) * 2.0f - 1.0f;
  return v;
}

// One case: C gets random values (or NaN when beta == 0) and a padded row stride.
void check_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                const char* isa) {
  const int64_t pad = 3;
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const std::vector<float> A = random_vec((ta ? K : M) * lda, 1 + M);
  const std::vector<float> B = random_vec((tb ? N : K) * ldb, 2 + N);
  std::vector<float> C = random_vec(M * ldc, 3 + K);
  if (beta == 0.0f) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> R = C;
  sgemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  reference::sgemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
  double worst = 0.0;
  bool pad_intact = true;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const double d = std::fabs(double(C[i * ldc + j]) - R[i * ldc + j]);
      worst = std::isnan(d) ? 1e30 : std::fmax(worst, d);
    }
    for (int64_t j = N; j < ldc; ++j) {
      const float c = C[i * ldc + j], r = R[i * ldc + j];
      pad_intact = pad_intact && (c == r || (std::isnan(c) && std::isnan(r)));
    }
  }
  const double tol = 1e-5 * std::sqrt(double(K) + 1) * 4 + 1e-6;
  CHECK(worst <= tol, "isa=", isa, " ta=", ta, " tb=", tb, " M=", M, " N=", N, " K=", K,
        " alpha=", alpha, " beta=", beta, ": max error ", worst, " > ", tol);
  CHECK(pad_intact, "isa=", isa, " M=", M, " N=", N, " K=", K,
        ": wrote past N into the row padding");
}

// sgemm_bias_rows against the reference product plus the bias on each row (C starts as NaN: it
// must not be read). post: sgemm_epilogue with a residual (its own row stride) and a clamp too.
void check_bias_rows(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const char* isa,
                     bool post = false) {
  const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
  const std::vector<float> A = random_vec((ta ? K : M) * lda, 21 + M);
  const std::vector<float> B = random_vec((tb ? N : K) * ldb, 22 + N);
  const std::vector<float> bias = random_vec(M, 23 + K);
  std::vector<float> C(M * ldc, std::numeric_limits<float>::quiet_NaN()), R(M * ldc, 0.0f);
  const int64_t ldr = N + 5;
  const std::vector<float> res = random_vec(M * ldr, 24 + K);
  const float lo = -0.3f, hi = 0.4f;
  if (post) {
    GemmEpilogue e;
    e.bias = bias.data();
    e.residual = res.data(), e.ldr = ldr;
    e.clamp = true, e.lo = lo, e.hi = hi;
    sgemm_epilogue(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, e, C.data(), ldc);
  } else {
    sgemm_bias_rows(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, bias.data(), C.data(), ldc);
  }
  if (K > 0)
    reference::sgemm(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, R.data(), ldc);
  double worst = 0.0;
  bool pad_intact = true;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = R[i * ldc + j] + bias[i];
      if (post) want = std::fmin(hi, std::fmax(lo, want + res[i * ldr + j]));
      const double d = std::fabs(double(C[i * ldc + j]) - want);
      worst = std::isnan(d) ? 1e30 : std::fmax(worst, d);
    }
    for (int64_t j = N; j < ldc; ++j) pad_intact = pad_intact && std::isnan(C[i * ldc + j]);
  }
  const double tol = 1e-5 * std::sqrt(double(K) + 1) * 4 + 1e-6;
  CHECK(worst <= tol, "bias rows isa=", isa, " post=", post, " ta=", ta, " tb=", tb, " M=", M,
        " N=", N, " K=", K, ": max error ", worst, " > ", tol);
  CHECK(pad_intact, "bias rows M=", M, " N=", N, ": wrote into the row padding");
}

// sgemm_strided_batched against one reference sgemm per batch; B shared when share_b.
void check_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t batch, bool share_b) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
  const int64_t sa = M * K, sb = share_b ? 0 : K * N, sc = M * N;
  const std::vector<float> A = random_vec(sa * batch, 11), B = random_vec(K * N * batch, 12);
  std::vector<float> C = random_vec(sc * batch, 13), R = C;
  sgemm_strided_batched(ta, tb, M, N, K, 1.5f, A.data(), lda, sa, B.data(), ldb, sb, 0.5f,
                        C.data(), ldc, sc, batch);
  for (int64_t i = 0; i < batch; ++i)
    reference::sgemm(ta, tb, M, N, K, 1.5f, A.data() + i * sa, lda, B.data() + i * sb, ldb, 0.5f,
                     R.data() + i * sc, ldc);
  double worst = 0.0;
  for (size_t i = 0; i < C.size(); ++i) worst = std::fmax(worst, std::fabs(double(C[i]) - R[i]));
  CHECK(worst < 1e-4, "strided batched M=", M, " N=", N, " K=", K, " batch=", batch,
        " share_b=", share_b, ": max error ", worst);
}

}  // namespace

int main() {
  const int64_t sizes[] = {1, 7, 13, 31, 33, 65, 127, 257};
  for (Isa isa : available_isas()) {
    set_isa(isa);
    const char* name = isa_name(isa);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int64_t M : sizes)
        for (int64_t N : sizes) {
          const int64_t K = sizes[(M + N) % 8];
          check_case(false, false, M, N, K, 1.0f, 0.0f, name);
          check_case((M / 2 + N) % 2 == 1, (M * N) % 3 == 0, M, N, K, 0.5f, 1.0f, name);
        }
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_case(ta, tb, 64, 300, 576, 1.0f, 0.0f, name);
          check_case(ta, tb, 200, 49, 1000, -2.0f, 0.25f, name);
          check_case(ta, tb, 37, 19, 1, 1.0f, -1.0f, name);
        }
      // Every edge micro-kernel (each row count up to MR, each vector count with a partial last
      // vector), stored directly and transposed (N = 49 and M = 64 make the driver swap), with
      // beta 0, 1 and other: the M and N remainders of two and a half tiles.
      const GemmBlocking blk = active_gemm_blocking();
      const int64_t lanes = blk.nr / 2 > 0 ? blk.nr / 2 : 1;
      const int64_t ns[] = {1, lanes - 1, lanes, lanes + 1, blk.nr - 1, blk.nr, blk.nr + 3,
                            2 * blk.nr + lanes - 2};
      for (int64_t M = 1; M <= 2 * blk.mr + 1; ++M)
        for (int64_t N : ns) {
          if (N < 1) continue;
          const float beta = M % 3 == 0 ? 0.0f : (M % 3 == 1 ? 1.0f : 0.5f);
          check_case(M % 2 == 1, N % 2 == 0, M, N, 9 + M % 5, 1.5f, beta, name);
        }
      for (int64_t M : {64, 50, 29})
        check_case(false, false, M, 49, 70, 1.0f, 0.5f, name);
      // More columns than one L3 block (NC) per thread, and more rows than one L2 block (MC).
      check_case(false, false, 150, 3100, 70, 1.0f, 0.0f, name);
      check_case(true, true, 7, 6500, 20, 1.0f, 0.5f, name);
      // Several L2-sized B blocks (N = 3100 at depth 300), ragged tiles, the vector paths (M or
      // N == 1), the transposed-store shape (N = 49, which must not swap) and K == 0.
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          check_bias_rows(ta, tb, 64, 3100, 300, name);
          check_bias_rows(ta, tb, 29, 49, 70, name);
          check_bias_rows(ta, tb, 1, 33, 17, name);
          check_bias_rows(ta, tb, 17, 1, 9, name);
          check_bias_rows(ta, tb, 64, 3100, 300, name, true);
          check_bias_rows(ta, tb, 29, 49, 70, name, true);
          check_bias_rows(ta, tb, 1, 33, 17, name, true);
          check_bias_rows(ta, tb, 17, 1, 9, name, true);
        }
      check_bias_rows(false, false, 5, 7, 0, name);
      check_bias_rows(false, false, 5, 7, 0, name, true);
      check_bias_rows(false, false, 31, 45, 500, name, true);  // three depth blocks
    }
  }
  set_isa(available_isas().back());
  set_num_threads(2);
  check_batched(false, false, 13, 17, 9, 5, true);
  check_batched(true, true, 7, 33, 65, 4, false);
  check_batched(false, true, 130, 128, 127, 3, false);
  CHECK_THROWS(ValueError, sgemm_strided_batched(false, false, 2, 2, 2, 1.0f, nullptr, 2, 4, nullptr,
                                                 2, 4, 0.0f, nullptr, 2, 4, -1));
  // K == 0 and alpha == 0 only scale C (beta == 0 clears NaN).
  std::vector<float> C(6, std::numeric_limits<float>::quiet_NaN());
  sgemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, C.data(), 3);
  CHECK(C[0] == 0.0f && C[5] == 0.0f, "K == 0, beta == 0 must zero C");
  C.assign(6, 2.0f);
  const std::vector<float> A(6, 1.0f), B(9, 1.0f);
  sgemm(false, false, 2, 3, 3, 0.0f, A.data(), 3, B.data(), 3, 0.5f, C.data(), 3);
  CHECK(C[0] == 1.0f && C[5] == 1.0f, "alpha == 0 must give beta * C");
  CHECK_THROWS(ValueError,
               sgemm(false, false, 2, 3, 3, 1.0f, A.data(), 2, B.data(), 3, 0.0f, C.data(), 3));
  CHECK_THROWS(ValueError,
               sgemm(false, false, -1, 3, 3, 1.0f, A.data(), 3, B.data(), 3, 0.0f, C.data(), 3));

  // Tensor level: matmul with a broadcast batch and linear against their references.
  manual_seed(5);
  Tensor a = randn({3, 1, 5, 7}), b = randn({4, 7, 6});
  CHECK(max_abs_diff(matmul(a, b), reference::matmul(a, b)) < 1e-4, "batched matmul");
  Tensor x = randn({9, 13}), w = randn({11, 13}), bias = randn({11});
  CHECK(max_abs_diff(linear_forward(x, w, bias), reference::linear_forward(x, w, bias)) < 1e-4,
        "linear forward");
  CHECK_THROWS(ValueError, matmul(randn({2, 3}), randn({4, 5})));
  return report("test_gemm");
}
