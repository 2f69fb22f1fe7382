// interpolate and pad on CUDA. The validation and the source-index tables are the CPU's
// (cpu/resample_tables.hpp, computed on the host in torch's float arithmetic and copied to the
// device), so both devices read the same source pixels. Forward: one thread per output element.
// Backward: one thread per grad_output element adding into the inputs it was read from
// (atomicAdd: several outputs share an input), except constant padding, whose inputs each feed
// at most one output (a gather, every dx element written once).
#include <vector>

#include "common.cuh"
#include "cpu/resample_tables.hpp"
#include "cuda_ops.hpp"

namespace cnncore::cuda {
namespace {
using resample_detail::LinearTable;
using resample_detail::PadGeom;

// Host vectors -> one contiguous device tensor of their concatenation.
template <class T>
Tensor upload(std::initializer_list<const std::vector<T>*> parts, DType dtype,
              const Device& device) {
  int64_t n = 0;
  for (const auto* v : parts) n += static_cast<int64_t>(v->size());
  Tensor host = Tensor::empty({n}, dtype);
  T* p = host.data<T>();
  for (const auto* v : parts)
    for (T x : *v) *p++ = x;
  return host.to(device);
}

struct InterpDims {
  int64_t planes, H, W, OH, OW;
};

// Nearest: idx = [th (OH) | tw (OW)].
__global__ void nearest_kernel(const float* x, float* y, const int64_t* idx, InterpDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    y[o] = x[(pl * d.H + idx[oh]) * d.W + idx[d.OH + ow]];
  }
}

__global__ void nearest_backward_kernel(const float* dy, float* dx, const int64_t* idx,
                                        InterpDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    atomicAdd(dx + (pl * d.H + idx[oh]) * d.W + idx[d.OH + ow], dy[o]);
  }
}

// Bilinear: idx = [i0h | i1h | i0w | i1w], lam = [l0h | l1h | l0w | l1w] (OH, OH, OW, OW).
// The CPU's order: each input row interpolated horizontally, then the two rows blended.
__global__ void bilinear_kernel(const float* x, float* y, const int64_t* idx, const float* lam,
                                InterpDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    const int64_t h0 = idx[oh], h1 = idx[d.OH + oh];
    const int64_t w0 = idx[2 * d.OH + ow], w1 = idx[2 * d.OH + d.OW + ow];
    const float a0 = lam[oh], a1 = lam[d.OH + oh];
    const float b0 = lam[2 * d.OH + ow], b1 = lam[2 * d.OH + d.OW + ow];
    const float* r0 = x + (pl * d.H + h0) * d.W;
    const float* r1 = x + (pl * d.H + h1) * d.W;
    const float t0 = b0 * r0[w0] + b1 * r0[w1];
    const float t1 = b0 * r1[w0] + b1 * r1[w1];
    y[o] = a0 * t0 + a1 * t1;
  }
}

__global__ void bilinear_backward_kernel(const float* dy, float* dx, const int64_t* idx,
                                         const float* lam, InterpDims d) {
  CNNCORE_CUDA_LOOP(o, d.planes * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    const int64_t h0 = idx[oh], h1 = idx[d.OH + oh];
    const int64_t w0 = idx[2 * d.OH + ow], w1 = idx[2 * d.OH + d.OW + ow];
    const float a0 = lam[oh], a1 = lam[d.OH + oh];
    const float b0 = lam[2 * d.OH + ow], b1 = lam[2 * d.OH + d.OW + ow];
    const float g = dy[o];
    float* r0 = dx + (pl * d.H + h0) * d.W;
    float* r1 = dx + (pl * d.H + h1) * d.W;
    // Every weight, zero ones too: a non-finite gradient spreads as on the CPU.
    atomicAdd(r0 + w0, a0 * (b0 * g));
    atomicAdd(r0 + w1, a0 * (b1 * g));
    atomicAdd(r1 + w0, a1 * (b0 * g));
    atomicAdd(r1 + w1, a1 * (b1 * g));
  }
}

// Tables on the device for one call: nearest -> idx only; bilinear -> idx and lam.
struct InterpTables {
  Tensor idx, lam;
};
InterpTables interp_tables(InterpMode mode, bool align_corners, double sh, double sw,
                           const InterpDims& d, const Device& device) {
  InterpTables t;
  if (mode == InterpMode::Nearest) {
    const auto th = resample_detail::nearest_table(d.H, d.OH, sh);
    const auto tw = resample_detail::nearest_table(d.W, d.OW, sw);
    t.idx = upload<int64_t>({&th, &tw}, DType::Int64, device);
  } else {
    const LinearTable th = resample_detail::linear_table(d.H, d.OH, align_corners, sh);
    const LinearTable tw = resample_detail::linear_table(d.W, d.OW, align_corners, sw);
    t.idx = upload<int64_t>({&th.i0, &th.i1, &tw.i0, &tw.i1}, DType::Int64, device);
    t.lam = upload<float>({&th.l0, &th.l1, &tw.l0, &tw.l1}, DType::Float32, device);
  }
  return t;
}

// ---- pad ----
struct PadDims {
  int64_t P, H, W, OH, OW, left, top;
  int mode;  // PadMode as int
};
PadDims pad_dims(const PadGeom& g, PadMode mode) {
  return {g.P, g.H, g.W, g.OH, g.OW, g.left, g.top, static_cast<int>(mode)};
}

// The CPU's pad_src: the input index output o reads along one dim, -1 for the constant fill.
__device__ int64_t pad_src(int64_t o, int64_t before, int64_t n, int mode) {
  const int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  if (mode == static_cast<int>(PadMode::Constant)) return -1;
  if (mode == static_cast<int>(PadMode::Replicate)) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;  // reflect (each pad < n, checked by pad_geom)
}

__global__ void pad_kernel(const float* x, float* y, PadDims d, float value) {
  CNNCORE_CUDA_LOOP(o, d.P * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    const int64_t ih = pad_src(oh, d.top, d.H, d.mode), iw = pad_src(ow, d.left, d.W, d.mode);
    y[o] = ih < 0 || iw < 0 ? value : x[(pl * d.H + ih) * d.W + iw];
  }
}

// Constant: dx[i] = dy[the output that copied input i], 0 where that output was cropped away.
__global__ void pad_constant_backward_kernel(const float* dy, float* dx, PadDims d) {
  CNNCORE_CUDA_LOOP(i, d.P * d.H * d.W) {
    const int64_t iw = i % d.W, ih = (i / d.W) % d.H, pl = i / (d.W * d.H);
    const int64_t oh = ih + d.top, ow = iw + d.left;
    dx[i] = oh >= 0 && oh < d.OH && ow >= 0 && ow < d.OW ? dy[(pl * d.OH + oh) * d.OW + ow] : 0.0f;
  }
}

// Reflect / replicate: several outputs copy one input.
__global__ void pad_fold_backward_kernel(const float* dy, float* dx, PadDims d) {
  CNNCORE_CUDA_LOOP(o, d.P * d.OH * d.OW) {
    const int64_t ow = o % d.OW, oh = (o / d.OW) % d.OH, pl = o / (d.OW * d.OH);
    const int64_t ih = pad_src(oh, d.top, d.H, d.mode), iw = pad_src(ow, d.left, d.W, d.mode);
    if (ih >= 0 && iw >= 0) atomicAdd(dx + (pl * d.H + ih) * d.W + iw, dy[o]);
  }
}
}  // namespace

Tensor interpolate_forward(const Tensor& x_in, int64_t OH, int64_t OW, InterpMode mode,
                           bool align_corners, double sh, double sw) {
  const char* op = "interpolate";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  resample_detail::check_interp(x_in.shape(), OH, OW, sh, sw, op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  const InterpDims d{x.size(0) * x.size(1), x.size(2), x.size(3), OH, OW};
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW}, DType::Float32, x.device());
  const InterpTables t = interp_tables(mode, align_corners, sh, sw, d, x.device());
  const int64_t n = y.numel();
  if (mode == InterpMode::Nearest)
    nearest_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                              t.idx.device_data<int64_t>(), d);
  else
    bilinear_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                               t.idx.device_data<int64_t>(),
                                               t.lam.device_data<float>(), d);
  check_launch(op);
  return y;
}

Tensor interpolate_backward(const Tensor& dy_in, const Shape& x_shape, InterpMode mode,
                            bool align_corners, double sh, double sw) {
  const char* op = "interpolate_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE(dy_in.dim() == 4, op, ": grad_output must be 4-D, but got shape ",
                      shape_str(dy_in.shape()));
  resample_detail::check_interp(x_shape, dy_in.size(2), dy_in.size(3), sh, sw, op);
  CNNCORE_CHECK_VALUE(dy_in.size(0) == x_shape[0] && dy_in.size(1) == x_shape[1], op,
                      ": grad_output must have the batch and channels of input_shape ",
                      shape_str(x_shape), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous();
  const InterpDims d{x_shape[0] * x_shape[1], x_shape[2], x_shape[3], dy.size(2), dy.size(3)};
  Tensor dx = Tensor::zeros(x_shape, DType::Float32, dy.device());
  const InterpTables t = interp_tables(mode, align_corners, sh, sw, d, dy.device());
  const int64_t n = dy.numel();
  if (mode == InterpMode::Nearest)
    nearest_backward_kernel<<<grid_for(n), kThreads>>>(
        dy.device_data<float>(), dx.device_data<float>(), t.idx.device_data<int64_t>(), d);
  else
    bilinear_backward_kernel<<<grid_for(n), kThreads>>>(
        dy.device_data<float>(), dx.device_data<float>(), t.idx.device_data<int64_t>(),
        t.lam.device_data<float>(), d);
  check_launch(op);
  return dx;
}

Tensor pad_forward(const Tensor& x_in, const std::vector<int64_t>& pads, PadMode mode,
                   float value) {
  const char* op = "pad";
  const int dev = check_cuda_inputs(op, {{"input", &x_in}});
  CNNCORE_CHECK_VALUE(x_in.dim() >= 1, op, ": input must have at least 1 dim, but got a scalar");
  const PadGeom g = resample_detail::pad_geom(x_in.shape(), pads, mode, op);
  DeviceGuard guard(dev, op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(g.out, DType::Float32, x.device());
  if (const int64_t n = y.numel()) {
    pad_kernel<<<grid_for(n), kThreads>>>(x.device_data<float>(), y.device_data<float>(),
                                          pad_dims(g, mode), value);
    check_launch(op);
  }
  return y;
}

Tensor pad_backward(const Tensor& dy_in, const Shape& x_shape, const std::vector<int64_t>& pads,
                    PadMode mode) {
  const char* op = "pad_backward";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE(!x_shape.empty(), op, ": input_shape must have at least 1 dim");
  const PadGeom g = resample_detail::pad_geom(x_shape, pads, mode, op);
  CNNCORE_CHECK_VALUE(dy_in.shape() == g.out, op, ": grad_output must have shape ",
                      shape_str(g.out), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = dy_in.contiguous();
  const PadDims d = pad_dims(g, mode);
  if (mode == PadMode::Constant) {
    Tensor dx = Tensor::empty(x_shape, DType::Float32, dy.device());
    if (const int64_t n = dx.numel()) {
      pad_constant_backward_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(),
                                                              dx.device_data<float>(), d);
      check_launch(op);
    }
    return dx;
  }
  Tensor dx = Tensor::zeros(x_shape, DType::Float32, dy.device());
  if (const int64_t n = dy.numel()) {
    pad_fold_backward_kernel<<<grid_for(n), kThreads>>>(dy.device_data<float>(),
                                                        dx.device_data<float>(), d);
    check_launch(op);
  }
  return dx;
}

}  // namespace cnncore::cuda
