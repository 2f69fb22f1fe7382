// Pooling on CUDA: max, average and adaptive average, forward and backward, with the CPU
// reference's conventions (cpu/reference/pool.cpp): windows start at o * stride - pad, a NaN wins
// a max window, ties keep the first maximum, indices are h * W + w within the plane (-1 for a
// window that misses the input), torch's average divisor. One thread per output element forward;
// backward of average pooling is a gather per input element (no atomics, deterministic); max
// pooling's backward scatters through the indices with atomicAdd (overlapping windows only).
#include <algorithm>
#include <cmath>

#include "common.cuh"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
struct PoolDims {
  int64_t planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, divisor;
  bool count_include_pad;
};
PoolDims dims_of(const Pool2dParams& p) {
  return {p.N * p.C, p.H, p.W, p.OH, p.OW, p.KH, p.KW, p.SH, p.SW, p.PH, p.PW, p.DH, p.DW,
          p.divisor_override, p.count_include_pad};
}

__global__ void max_pool_kernel(const float* x, float* y, int64_t* idx, PoolDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    const float* plane = x + pl * d.H * d.W;
    float best = -INFINITY;
    int64_t besti = -1;
    for (int64_t kh = 0; kh < d.KH; ++kh) {
      const int64_t ih = oh * d.SH - d.PH + kh * d.DH;
      if (ih < 0 || ih >= d.H) continue;
      for (int64_t kw = 0; kw < d.KW; ++kw) {
        const int64_t iw = ow * d.SW - d.PW + kw * d.DW;
        if (iw < 0 || iw >= d.W) continue;
        const float v = plane[ih * d.W + iw];
        if (besti == -1) besti = ih * d.W + iw;
        if (v > best || isnan(v)) {
          best = v;
          besti = ih * d.W + iw;
        }
      }
    }
    y[o] = best;
    idx[o] = besti;
  }
}

__global__ void max_pool_backward_kernel(const float* dy, const int64_t* idx, float* dx,
                                         int64_t planes, int64_t HW, int64_t OHW) {
  CNNCORE_CUDA_LOOP(o, planes * OHW) {
    const int64_t i = idx[o];
    if (i >= 0 && i < HW) atomicAdd(dx + (o / OHW) * HW + i, dy[o]);
  }
}

// torch's window for average pooling (cpu/reference/pool.cpp avg_bounds).
__device__ bool avg_window(const PoolDims& d, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1,
                           int64_t& w0, int64_t& w1, float& div) {
  const int64_t hs = oh * d.SH - d.PH, ws = ow * d.SW - d.PW;
  const int64_t he = min(hs + d.KH, d.H + d.PH), we = min(ws + d.KW, d.W + d.PW);
  const int64_t pool = (he - hs) * (we - ws);
  h0 = max(hs, int64_t{0});
  w0 = max(ws, int64_t{0});
  h1 = min(he, d.H);
  w1 = min(we, d.W);
  if (h0 >= h1 || w0 >= w1) return false;
  div = static_cast<float>(d.divisor ? d.divisor
                           : d.count_include_pad ? pool : (h1 - h0) * (w1 - w0));
  return true;
}

__global__ void avg_pool_kernel(const float* x, float* y, PoolDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    int64_t h0, h1, w0, w1;
    float div, s = 0.0f;
    if (avg_window(d, oh, ow, h0, h1, w0, w1, div)) {
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t iw = w0; iw < w1; ++iw) s += x[(pl * d.H + ih) * d.W + iw];
      s /= div;
    }
    y[o] = s;
  }
}

__device__ int64_t ceil_div_nonneg(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

__global__ void avg_pool_backward_kernel(const float* dy, float* dx, PoolDims d) {
  CNNCORE_CUDA_LOOP(i, d.planes * d.H * d.W) {
    const int64_t iw = i % d.W, ih = (i / d.W) % d.H, pl = i / (d.W * d.H);
    // Windows with oh * SH - PH <= ih < oh * SH - PH + KH (and the same for columns).
    const int64_t oh0 = ceil_div_nonneg(ih + d.PH - d.KH + 1, d.SH);
    const int64_t oh1 = min((ih + d.PH) / d.SH + 1, d.OH);
    const int64_t ow0 = ceil_div_nonneg(iw + d.PW - d.KW + 1, d.SW);
    const int64_t ow1 = min((iw + d.PW) / d.SW + 1, d.OW);
    float s = 0.0f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        int64_t h0, h1, w0, w1;
        float div;
        if (avg_window(d, oh, ow, h0, h1, w0, w1, div) && ih >= h0 && ih < h1 && iw >= w0 &&
            iw < w1)
          s += dy[(pl * d.OH + oh) * d.OW + ow] / div;
      }
    dx[i] = s;
  }
}

// Adaptive windows: [floor(i * in / out), ceil((i + 1) * in / out)), as adaptive_start/end.
__device__ int64_t a_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
__device__ int64_t a_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

__global__ void adaptive_avg_kernel(const float* x, float* y, int64_t planes, int64_t H,
                                    int64_t W, int64_t OH, int64_t OW) {
  CNNCORE_CUDA_LOOP(o, planes * OH * OW) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, pl = o / (OW * OH);
    const int64_t h0 = a_start(oh, H, OH), h1 = a_end(oh, H, OH);
    const int64_t w0 = a_start(ow, W, OW), w1 = a_end(ow, W, OW);
    float s = 0.0f;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) s += x[(pl * H + ih) * W + iw];
    y[o] = s / static_cast<float>((h1 - h0) * (w1 - w0));
  }
}

__global__ void adaptive_avg_backward_kernel(const float* dy, float* dx, int64_t planes,
                                             int64_t H, int64_t W, int64_t OH, int64_t OW) {
  CNNCORE_CUDA_LOOP(i, planes * H * W) {
    const int64_t iw = i % W, ih = (i / W) % H, pl = i / (W * H);
    float s = 0.0f;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = a_start(oh, H, OH), h1 = a_end(oh, H, OH);
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = a_start(ow, W, OW), w1 = a_end(ow, W, OW);
        if (iw < w0 || iw >= w1) continue;
        s += dy[(pl * OH + oh) * OW + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
    dx[i] = s;
  }
}

// ---- cuda-a: adaptive max pooling ----
// The CPU's window and tie rules: the max over [a_start, a_end) in both dims, starting from -inf
// at the window's first pixel; a NaN wins (the last NaN of the window).
__global__ void adaptive_max_kernel(const float* x, float* y, int64_t* idx, int64_t planes,
                                    int64_t H, int64_t W, int64_t OH, int64_t OW) {
  CNNCORE_CUDA_LOOP(o, planes * OH * OW) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, pl = o / (OW * OH);
    const int64_t h0 = a_start(oh, H, OH), h1 = a_end(oh, H, OH);
    const int64_t w0 = a_start(ow, W, OW), w1 = a_end(ow, W, OW);
    const float* plane = x + pl * H * W;
    float best = -INFINITY;
    int64_t besti = h0 * W + w0;
    for (int64_t ih = h0; ih < h1; ++ih)
      for (int64_t iw = w0; iw < w1; ++iw) {
        const float v = plane[ih * W + iw];
        if (v > best || isnan(v)) {
          best = v;
          besti = ih * W + iw;
        }
      }
    y[o] = best;
    idx[o] = besti;
  }
}

// dx[plane][idx] += dy (atomicAdd: windows overlap); an index outside the plane other than -1
// sets *bad (the host reports it, as the CPU does).
__global__ void scatter_checked_kernel(const float* dy, const int64_t* idx, float* dx,
                                       int64_t planes, int64_t HW, int64_t OHW, int* bad) {
  CNNCORE_CUDA_LOOP(o, planes * OHW) {
    const int64_t i = idx[o];
    if (i >= 0 && i < HW) atomicAdd(dx + (o / OHW) * HW + i, dy[o]);
    else if (i != -1) *bad = 1;
  }
}
// ---- end cuda-a kernels ----

Pool2dOptions no_dilation(Pool2dOptions o) {
  o.dilation_h = o.dilation_w = 1;
  return o;
}

void check_grad(const Tensor& dy, const Shape& expected, const char* op) {
  CNNCORE_CHECK_VALUE(dy.shape() == expected, op, ": grad_output must have shape ",
                      shape_str(expected), ", but got ", shape_str(dy.shape()));
}

// (N, C, OH, OW) or (C, OH, OW) from x_shape with new spatial sizes.
Shape spatial(Shape s, int64_t h, int64_t w) {
  s[s.size() - 2] = h;
  s[s.size() - 1] = w;
  return s;
}
}  // namespace

std::pair<Tensor, Tensor> max_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  const char* op = "max_pool2d";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  const Pool2dParams p = pool2d_params(x_in.shape(), opt, op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(p.output_shape(), DType::Float32, x.device());
  Tensor idx = Tensor::empty(p.output_shape(), DType::Int64, x.device());
  const PoolDims d = dims_of(p);
  if (const int64_t n = y.numel()) {
    max_pool_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                               idx.device_data<int64_t>(), d);
    check_launch(op);
  }
  return {y, idx};
}

Tensor max_pool2d_backward(const Tensor& dy_in, const Tensor& idx_in, const Shape& x_shape) {
  const char* op = "max_pool2d_backward";
  check_same_device(op, {{"grad_output", &dy_in}, {"indices", &idx_in}});
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_TYPE(idx_in.dtype() == DType::Int64, op, ": indices must be int64, but got ",
                     dtype_name(idx_in.dtype()));
  CNNCORE_CHECK_VALUE((x_shape.size() == 3 || x_shape.size() == 4) &&
                          dy_in.dim() == static_cast<int64_t>(x_shape.size()) &&
                          idx_in.shape() == dy_in.shape(),
                      op, ": grad_output ", shape_str(dy_in.shape()), " and indices ",
                      shape_str(idx_in.shape()), " do not fit input_shape ", shape_str(x_shape));
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), idx = idx_in.contiguous();
  Tensor dx = Tensor::zeros(x_shape, DType::Float32, dy.device());
  const int64_t HW = x_shape[x_shape.size() - 2] * x_shape.back();
  const int64_t OHW = dy.size(-2) * dy.size(-1), planes = OHW ? dy.numel() / OHW : 0;
  if (const int64_t n = dy.numel()) {
    max_pool_backward_kernel<<<grid_for(n), kThreads>>>(
        dy.device_data<float>(), idx.device_data<int64_t>(), dx.device_data<float>(), planes, HW,
        OHW);
    check_launch(op);
  }
  return dx;
}

Tensor avg_pool2d_forward(const Tensor& x_in, const Pool2dOptions& opt) {
  const char* op = "avg_pool2d";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  const Pool2dParams p = pool2d_params(x_in.shape(), no_dilation(opt), op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(p.output_shape(), DType::Float32, x.device());
  if (const int64_t n = y.numel()) {
    avg_pool_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                               dims_of(p));
    check_launch(op);
  }
  return y;
}

Tensor avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape, const Pool2dOptions& opt) {
  const char* op = "avg_pool2d_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  const Pool2dParams p = pool2d_params(x_shape, no_dilation(opt), op);
  check_grad(dy_in, p.output_shape(), op);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous();
  Tensor dx = Tensor::empty(x_shape, DType::Float32, dy.device());
  if (const int64_t n = dx.numel()) {
    avg_pool_backward_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(),
                                                        dx.device_data<float>(), dims_of(p));
    check_launch(op);
  }
  return dx;
}

Tensor adaptive_avg_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  const char* op = "adaptive_avg_pool2d";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  CNNCORE_CHECK_VALUE(x_in.dim() == 3 || x_in.dim() == 4, op,
                      ": input must be 3-D (C, H, W) or 4-D (N, C, H, W), but got shape ",
                      shape_str(x_in.shape()));
  CNNCORE_CHECK_VALUE(OH >= 1 && OW >= 1, op, ": output_size must be >= 1, but got (", OH, ", ",
                      OW, ")");
  const int64_t H = x_in.size(-2), W = x_in.size(-1);
  CNNCORE_CHECK_VALUE(H >= 1 && W >= 1, op, ": input must have non-empty spatial dims, but got ",
                      shape_str(x_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(spatial(x.shape(), OH, OW), DType::Float32, x.device());
  const int64_t planes = x.numel() / (H * W);
  if (const int64_t n = y.numel()) {
    adaptive_avg_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                                   planes, H, W, OH, OW);
    check_launch(op);
  }
  return y;
}

Tensor adaptive_avg_pool2d_backward(const Tensor& dy_in, const Shape& x_shape) {
  const char* op = "adaptive_avg_pool2d_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE((x_shape.size() == 3 || x_shape.size() == 4) &&
                          dy_in.dim() == static_cast<int64_t>(x_shape.size()),
                      op, ": grad_output ", shape_str(dy_in.shape()), " does not fit input_shape ",
                      shape_str(x_shape));
  const int64_t H = x_shape[x_shape.size() - 2], W = x_shape.back();
  const int64_t OH = dy_in.size(-2), OW = dy_in.size(-1);
  check_grad(dy_in, spatial(x_shape, OH, OW), op);
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous();
  Tensor dx = Tensor::empty(x_shape, DType::Float32, dy.device());
  const int64_t planes = H * W ? dx.numel() / (H * W) : 0;
  if (const int64_t n = dx.numel()) {
    adaptive_avg_backward_kernel<<<grid_for(n), kThreads>>>(
        dy.device_data<float>(), dx.device_data<float>(), planes, H, W, OH, OW);
    check_launch(op);
  }
  return dx;
}

// ---- cuda-a: adaptive_max_pool2d ----
std::pair<Tensor, Tensor> adaptive_max_pool2d_forward(const Tensor& x_in, int64_t OH, int64_t OW) {
  const char* op = "adaptive_max_pool2d";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  CNNCORE_CHECK_VALUE(x_in.dim() == 3 || x_in.dim() == 4, op,
                      ": input must be 3-D (C, H, W) or 4-D (N, C, H, W), but got ", x_in.dim(),
                      "-D with shape ", shape_str(x_in.shape()));
  CNNCORE_CHECK_VALUE(x_in.numel() > 0, op, ": input must not be empty, but got shape ",
                      shape_str(x_in.shape()));
  CNNCORE_CHECK_VALUE(OH >= 1 && OW >= 1, op, ": output_size must be at least (1, 1), but got (",
                      OH, ", ", OW, ")");
  constexpr int64_t kMax = int64_t{1} << 31;  // window bounds compute i * H
  CNNCORE_CHECK_VALUE(OH < kMax && OW < kMax && x_in.size(-1) < kMax && x_in.size(-2) < kMax, op,
                      ": output_size and input height/width must be below 2^31, but got output (",
                      OH, ", ", OW, ") for input ", shape_str(x_in.shape()));
  const int64_t H = x_in.size(-2), W = x_in.size(-1);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(spatial(x.shape(), OH, OW), DType::Float32, x.device());
  Tensor idx = Tensor::empty(spatial(x.shape(), OH, OW), DType::Int64, x.device());
  const int64_t planes = x.numel() / (H * W);
  if (const int64_t n = y.numel()) {
    adaptive_max_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                                   idx.device_data<int64_t>(), planes, H, W, OH,
                                                   OW);
    check_launch(op);
  }
  return {y, idx};
}

Tensor adaptive_max_pool2d_backward(const Tensor& dy_in, const Tensor& idx_in,
                                    const Shape& x_shape) {
  const char* op = "adaptive_max_pool2d_backward";
  check_same_device(op, {{"grad_output", &dy_in}, {"indices", &idx_in}});
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE(x_shape.size() == 3 || x_shape.size() == 4, op,
                      ": input_shape must be 3-D (C, H, W) or 4-D (N, C, H, W), but got ",
                      shape_str(x_shape));
  for (int64_t d : x_shape)
    CNNCORE_CHECK_VALUE(d > 0, op, ": input_shape must have positive sizes, but got ",
                        shape_str(x_shape));
  CNNCORE_CHECK_VALUE(dy_in.dim() == static_cast<int64_t>(x_shape.size()) &&
                          std::equal(x_shape.begin(), x_shape.end() - 2, dy_in.shape().begin()),
                      op, ": grad_output must have the leading dims of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy_in.shape()));
  CNNCORE_CHECK_TYPE(idx_in.dtype() == DType::Int64, op, ": indices must be int64, but got ",
                     dtype_name(idx_in.dtype()));
  CNNCORE_CHECK_VALUE(idx_in.shape() == dy_in.shape(), op,
                      ": indices must have the shape of grad_output ", shape_str(dy_in.shape()),
                      ", but got ", shape_str(idx_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous(), idx = idx_in.contiguous();
  Tensor dx = Tensor::zeros(x_shape, DType::Float32, dy.device());
  const int64_t HW = x_shape[x_shape.size() - 2] * x_shape.back();
  const int64_t OHW = dy.size(-2) * dy.size(-1), planes = OHW ? dy.numel() / OHW : 0;
  if (const int64_t n = dy.numel()) {
    int* bad = static_cast<int*>(allocate(sizeof(int), dev, op));
    int host_bad = 0;
    try {
      check_cuda(cudaMemset(bad, 0, sizeof(int)), op, "cudaMemset");
      scatter_checked_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(),
                                                        idx.device_data<int64_t>(),
                                                        dx.device_data<float>(), planes, HW, OHW,
                                                        bad);
      check_launch(op);
      copy_device_to_host(&host_bad, bad, sizeof(int), dev);
    } catch (...) {
      release(bad, dev);
      throw;
    }
    release(bad, dev);
    CNNCORE_CHECK_VALUE(host_bad == 0, op, ": indices must lie in [0, ", HW,
                        ") (an index into an input plane of ", x_shape[x_shape.size() - 2], "x",
                        x_shape.back(), "), but some are outside");
  }
  return dx;
}
// ---- end cuda-a ----

}  // namespace cnncore::cuda
