// Per-ISA entry points of the tensor_ops family (bodies in tensor_ops_kernels.inc).
// All take plain float arrays of n elements; y is overwritten unless the name says accumulate.
#pragma once

#include <cstdint>

#include "cnncore/ops/tensor_ops.hpp"
#include "cpu/dispatch.hpp"

namespace cnncore {
CNNCORE_DECLARE_ISA_KERNELS(
    // y[i] = a[i] op b[i]
    void binary_vv(BinaryOp op, const float* a, const float* b, float* y, int64_t n);
    // y[i] = a[i] op s
    void binary_vs(BinaryOp op, const float* a, float s, float* y, int64_t n);
    // y[i] = s op b[i]
    void binary_sv(BinaryOp op, float s, const float* b, float* y, int64_t n);
    // y[i] = op(x[i])
    void unary(UnaryOp op, const float* x, float* y, int64_t n);
    // accumulates y[i] += alpha * x[i]
    void axpy(float alpha, const float* x, float* y, int64_t n);
    // accumulates y[i] += s
    void add_scalar_inplace(float s, float* y, int64_t n);
    // sum of x[0..n), float lanes over short blocks, blocks added in double
    double sum_contig(const float* x, int64_t n);
    // accumulates acc[i] += sum over r < nrows of rows[r][i]: rows added in float lanes, the
    // block total added in double (callers keep nrows small, e.g. <= 64)
    void accumulate_rows(const float* const* rows, int64_t nrows, double* acc, int64_t n);
    // (max, first index of it) of a contiguous row x[0..n), 1 <= n < 2^31; nan wins (first nan)
    void max_row(const float* x, int64_t n, float* value, int64_t* index);
    // one step of a column-wise running max: where x[j] beats v[j] (greater, or the first nan),
    // v[j] = x[j] and idx[j] = k; updates v and idx in place
    void max_update(const float* x, int32_t k, float* v, int32_t* idx, int64_t n);)
}  // namespace cnncore
