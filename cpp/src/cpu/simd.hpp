// A thin vector type for the ISA this translation unit is compiled for. Included only from
// <family>_kernels.inc, after the per-ISA .cpp file defined CNNCORE_KERNEL_ISA:
//   0 = baseline x86-64 (SSE2, 4 lanes), 2 = AVX2+FMA (8 lanes), 3 = AVX-512 (16 lanes).
// and the namespace CNNCORE_ISA_NS. The kernel body is written once against VecF and compiled for
// each. Every loop over VecF::width must also handle the tail (load_partial/store_partial).
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(CNNCORE_KERNEL_ISA)
#error "define CNNCORE_KERNEL_ISA before including simd.hpp"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define CNNCORE_X86 1
#endif

namespace cnncore {
namespace CNNCORE_ISA_NS {

#if CNNCORE_KERNEL_ISA == 3
struct VecF {
  __m512 v;
  static constexpr int width = 16;
  static VecF zero() { return {_mm512_setzero_ps()}; }
  static VecF set1(float x) { return {_mm512_set1_ps(x)}; }
  static VecF load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static VecF load_partial(const float* p, int n) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p)};
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
  friend VecF operator+(VecF a, VecF b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm512_div_ps(a.v, b.v)}; }
  static VecF fmadd(VecF a, VecF b, VecF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  static VecF max(VecF a, VecF b) { return {_mm512_max_ps(a.v, b.v)}; }
  static VecF min(VecF a, VecF b) { return {_mm512_min_ps(a.v, b.v)}; }
  float reduce_add() const { return _mm512_reduce_add_ps(v); }
};
#elif CNNCORE_KERNEL_ISA == 2
struct VecF {
  __m256 v;
  static constexpr int width = 8;
  static __m256i tail_mask(int n) {
    alignas(32) static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + 8 - n));
  }
  static VecF zero() { return {_mm256_setzero_ps()}; }
  static VecF set1(float x) { return {_mm256_set1_ps(x)}; }
  static VecF load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static VecF load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, tail_mask(n))}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, tail_mask(n), v); }
  friend VecF operator+(VecF a, VecF b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm256_div_ps(a.v, b.v)}; }
  static VecF fmadd(VecF a, VecF b, VecF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static VecF max(VecF a, VecF b) { return {_mm256_max_ps(a.v, b.v)}; }
  static VecF min(VecF a, VecF b) { return {_mm256_min_ps(a.v, b.v)}; }
  float reduce_add() const {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
};
#elif defined(CNNCORE_X86)
struct VecF {
  __m128 v;
  static constexpr int width = 4;
  static VecF zero() { return {_mm_setzero_ps()}; }
  static VecF set1(float x) { return {_mm_set1_ps(x)}; }
  static VecF load(const float* p) { return {_mm_loadu_ps(p)}; }
  static VecF load_partial(const float* p, int n) {
    alignas(16) float t[4] = {0, 0, 0, 0};
    std::memcpy(t, p, sizeof(float) * n);
    return {_mm_load_ps(t)};
  }
  void store(float* p) const { _mm_storeu_ps(p, v); }
  void store_partial(float* p, int n) const {
    alignas(16) float t[4];
    _mm_store_ps(t, v);
    std::memcpy(p, t, sizeof(float) * n);
  }
  friend VecF operator+(VecF a, VecF b) { return {_mm_add_ps(a.v, b.v)}; }
  friend VecF operator-(VecF a, VecF b) { return {_mm_sub_ps(a.v, b.v)}; }
  friend VecF operator*(VecF a, VecF b) { return {_mm_mul_ps(a.v, b.v)}; }
  friend VecF operator/(VecF a, VecF b) { return {_mm_div_ps(a.v, b.v)}; }
  static VecF fmadd(VecF a, VecF b, VecF c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
  static VecF max(VecF a, VecF b) { return {_mm_max_ps(a.v, b.v)}; }
  static VecF min(VecF a, VecF b) { return {_mm_min_ps(a.v, b.v)}; }
  float reduce_add() const {
    alignas(16) float t[4];
    _mm_store_ps(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
  }
};
#else
// Not x86: a portable 4-lane struct the compiler may auto-vectorise.
struct VecF {
  float v[4];
  static constexpr int width = 4;
  static VecF zero() { return {{0, 0, 0, 0}}; }
  static VecF set1(float x) { return {{x, x, x, x}}; }
  static VecF load(const float* p) { VecF r; std::memcpy(r.v, p, 16); return r; }
  static VecF load_partial(const float* p, int n) { VecF r = zero(); std::memcpy(r.v, p, 4 * n); return r; }
  void store(float* p) const { std::memcpy(p, v, 16); }
  void store_partial(float* p, int n) const { std::memcpy(p, v, 4 * n); }
#define CNNCORE_VOP(op) friend VecF operator op(VecF a, VecF b) { VecF r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] op b.v[i]; return r; }
  CNNCORE_VOP(+) CNNCORE_VOP(-) CNNCORE_VOP(*) CNNCORE_VOP(/)
#undef CNNCORE_VOP
  static VecF fmadd(VecF a, VecF b, VecF c) { VecF r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] * b.v[i] + c.v[i]; return r; }
  static VecF max(VecF a, VecF b) { VecF r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i]; return r; }
  static VecF min(VecF a, VecF b) { VecF r; for (int i = 0; i < 4; ++i) r.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i]; return r; }
  float reduce_add() const { return (v[0] + v[1]) + (v[2] + v[3]); }
};
#endif

}  // namespace CNNCORE_ISA_NS
}  // namespace cnncore
