// The Winograd path of conv2d: shape rules and the calls into the per-ISA kernels.
#include "cpu/winograd.hpp"

#include "cpu/winograd_kernels.hpp"

namespace cnncore::conv_impl {

bool winograd_fits(const Conv2dParams& p) {
  return p.R == 3 && p.S == 3 && !p.is_strided() && !p.is_dilated() && p.groups == 1;
}

bool winograd_preferred(const Conv2dParams& p, std::string* why) {
  if (!winograd_fits(p)) return false;
  // Below a vector's worth of channels the channel-vectorised transforms run mostly empty lanes
  // and the 36 GEMMs are too thin to beat one im2col GEMM (the RGB stem of VGG, C = 3).
  if (p.C < 16 || p.K < 16) {
    if (why) *why = "fewer than 16 input or output channels";
    return false;
  }
  // Its weights are 4x larger once transformed; with few output tiles to share that cost it
  // loses (measured, AVX-512, 1 thread: 512@7 at batch 1, 4 tiles, 0.5x PyTorch against
  // im2col's 1.1x; 256@14 at batch 1, 16 tiles, 0.85x against 0.74x).
  // An output smaller than one 4x4 tile computes mostly padding (2x2: 4 of 16 outputs kept, a
  // 16x waste at 1x1) while still transforming all the weights.
  if (p.OH < 4 || p.OW < 4) {
    if (why) *why = "output smaller than one 4x4 tile";
    return false;
  }
  const int64_t tiles = p.N * ((p.OH + 3) / 4) * ((p.OW + 3) / 4);
  if (tiles < 16) {
    if (why) *why = std::to_string(tiles) + " output tiles of 4x4, too few to amortise the "
                    "weight transform";
    return false;
  }
  if (why) *why = "3x3 stride 1, " + std::to_string(p.C) + " -> " + std::to_string(p.K) +
                  " channels: 36 GEMMs over " + std::to_string(tiles) + " tiles of 4x4";
  return true;
}

Tensor winograd_forward(const Tensor& x, const Tensor& w, const float* bias,
                        const Conv2dParams& p, const ConvPost* post) {
  Tensor y = Tensor::empty(p.output_shape());
  const WinoGeom g{p.N, p.C, p.K, p.H, p.W, p.OH, p.OW, p.pad_t, p.pad_l};
  CNNCORE_ISA_CALL(winograd_conv(g, x.data<float>(), w.data<float>(), false, bias,
                                 y.data<float>(), post));
  return y;
}

Tensor winograd_backward_input(const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = Tensor::empty(p.input_shape());
  // dx[ih] = sum_r dy[ih + pad_t - r] w[r]: the conv of dy (OH, OW) -> (H, W) with the taps
  // reversed and padding 2 - pad (negative = a crop).
  const WinoGeom g{p.N, p.K, p.C, p.OH, p.OW, p.H, p.W, 2 - p.pad_t, 2 - p.pad_l};
  CNNCORE_ISA_CALL(winograd_conv(g, dy.data<float>(), w.data<float>(), true, nullptr,
                                 dx.data<float>(), nullptr));
  return dx;
}

}  // namespace cnncore::conv_impl
