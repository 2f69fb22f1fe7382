// The validation and source-index tables of interpolate and pad, shared by the CPU entry points
// (cpu/resample.cpp) and the CUDA kernels (cuda/resample.cu), so both pick the same source pixels
// from tables computed once on the host in torch's float arithmetic.
#pragma once

#include <cstdint>
#include <vector>

#include "cnncore/ops/resample.hpp"

namespace cnncore::resample_detail {

void check_interp(const Shape& x, int64_t out_h, int64_t out_w, double sh, double sw,
                  const char* op);
// nearest: t[o] = the input index output o reads.
std::vector<int64_t> nearest_table(int64_t in, int64_t out, double scale);
// bilinear: output o = l0[o] * x[i0[o]] + l1[o] * x[i1[o]].
struct LinearTable {
  std::vector<int64_t> i0, i1;
  std::vector<float> l0, l1;
};
LinearTable linear_table(int64_t in, int64_t out, bool align_corners, double scale);

const char* pad_mode_name(PadMode m);
// P planes of H x W (H = 1 for a 2-entry pad) -> OH x OW; out is the output shape.
struct PadGeom {
  int64_t P = 1, H = 1, W = 1, OH = 1, OW = 1;
  int64_t left = 0, right = 0, top = 0, bottom = 0;
  Shape out;
};
PadGeom pad_geom(const Shape& x, const std::vector<int64_t>& pads, PadMode mode, const char* op);

}  // namespace cnncore::resample_detail
