// conv2d on CUDA as implicit GEMM (gemm_tile.cuh), with the CPU reference's index conventions:
// output pixel (oh, ow) reads input row oh * stride_h - pad_t + r * dil_h (and the same for
// columns); weight (K, C/g, R, S); group g owns input channels [g C/g, (g+1) C/g) and output
// channels [g K/g, (g+1) K/g). Shapes are validated by the same conv2d_params as on the CPU.
//   forward:         per group, M = K/g, N = batch x OH x OW, depth = C/g x R x S
//   backward-input:  per group, M = C/g, N = batch x H x W,   depth = K/g x R x S (a gather)
//   backward-weight: per group, M = K/g, N = C/g x R x S,     depth = batch x OH x OW
#include "cuda_ops.hpp"
#include "gemm_tile.cuh"

namespace cnncore::cuda {
namespace {

struct ConvDims {  // Conv2dParams in device-friendly form
  int64_t N, C, H, W, K, R, S, OH, OW, sh, sw, pt, pl, dh, dw, Cg, Kg;
};
ConvDims dims_of(const Conv2dParams& p) {
  return {p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.OH, p.OW, p.stride_h, p.stride_w, p.pad_t,
          p.pad_l, p.dil_h, p.dil_w, p.C_per_group(), p.K_per_group()};
}

Tensor cuda_f32(const Tensor& t) { return t.contiguous(); }

// The implicit im2col element: input channel c of group g at kernel tap (r, s) for output pixel
// (img, oh, ow); zero in the padding. Shared by the forward and the weight gradient.
__device__ float im2col_at(const float* x, const ConvDims& d, int g, int64_t crs, int64_t pix) {
  const int64_t s = crs % d.S, r = (crs / d.S) % d.R, c = crs / (d.S * d.R);
  const int64_t ow = pix % d.OW, oh = (pix / d.OW) % d.OH, img = pix / (d.OW * d.OH);
  const int64_t ih = oh * d.sh - d.pt + r * d.dh, iw = ow * d.sw - d.pl + s * d.dw;
  if (ih < 0 || ih >= d.H || iw < 0 || iw >= d.W) return 0.0f;
  return x[((img * d.C + g * d.Cg + c) * d.H + ih) * d.W + iw];
}

// ---- forward ----
struct FwdWeight {  // A(m = output channel in group, k = (c, r, s))
  const float* w;
  int64_t Kg, CRS;
  __device__ float operator()(int g, int64_t m, int64_t k) const {
    return w[(g * Kg + m) * CRS + k];
  }
};
struct FwdInput {  // B(k = (c, r, s), n = (img, oh, ow)): implicit im2col
  const float* x;
  ConvDims d;
  __device__ float operator()(int g, int64_t k, int64_t n) const {
    return im2col_at(x, d, g, k, n);
  }
};
struct FwdStore {
  float* y;
  const float* bias;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    const int64_t k = g * d.Kg + m, pix = n % (d.OH * d.OW), img = n / (d.OH * d.OW);
    y[(img * d.K + k) * d.OH * d.OW + pix] = v + (bias ? bias[k] : 0.0f);
  }
};

// ---- backward input ----
struct BwdInWeight {  // A(m = input channel in group, k = (kk, r, s)) = w[g Kg + kk, m, r, s]
  const float* w;
  ConvDims d;
  __device__ float operator()(int g, int64_t m, int64_t k) const {
    const int64_t rs = k % (d.R * d.S), kk = k / (d.R * d.S);
    return w[((g * d.Kg + kk) * d.Cg + m) * d.R * d.S + rs];
  }
};
struct BwdInGrad {  // B(k = (kk, r, s), n = (img, ih, iw)): the dy pixel that read (ih, iw)
  const float* dy;
  ConvDims d;
  __device__ float operator()(int g, int64_t k, int64_t n) const {
    const int64_t s = k % d.S, r = (k / d.S) % d.R, kk = k / (d.S * d.R);
    const int64_t iw = n % d.W, ih = (n / d.W) % d.H, img = n / (d.W * d.H);
    const int64_t th = ih + d.pt - r * d.dh, tw = iw + d.pl - s * d.dw;
    if (th < 0 || tw < 0 || th % d.sh || tw % d.sw) return 0.0f;
    const int64_t oh = th / d.sh, ow = tw / d.sw;
    if (oh >= d.OH || ow >= d.OW) return 0.0f;
    return dy[((img * d.K + g * d.Kg + kk) * d.OH + oh) * d.OW + ow];
  }
};
struct BwdInStore {
  float* dx;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    const int64_t pix = n % (d.H * d.W), img = n / (d.H * d.W);
    dx[(img * d.C + g * d.Cg + m) * d.H * d.W + pix] = v;
  }
};

// ---- backward weight ----
struct BwdWGrad {  // A(m = output channel in group, k = (img, oh, ow))
  const float* dy;
  ConvDims d;
  __device__ float operator()(int g, int64_t m, int64_t k) const {
    const int64_t pix = k % (d.OH * d.OW), img = k / (d.OH * d.OW);
    return dy[(img * d.K + g * d.Kg + m) * d.OH * d.OW + pix];
  }
};
struct BwdWInput {  // B(k = (img, oh, ow), n = (c, r, s))
  const float* x;
  ConvDims d;
  __device__ float operator()(int g, int64_t k, int64_t n) const {
    return im2col_at(x, d, g, n, k);
  }
};
struct BwdWStore {
  float* dw;
  ConvDims d;
  __device__ void operator()(int g, int64_t m, int64_t n, float v) const {
    dw[(g * d.Kg + m) * d.Cg * d.R * d.S + n] = v;
  }
};

// One block per channel: the sum over batch and pixels of dy[:, k].
__global__ void channel_sum_kernel(const float* dy, float* db, int64_t N, int64_t K, int64_t L) {
  __shared__ float part[kThreads];
  const int64_t k = blockIdx.x;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < N * L; i += blockDim.x) {
    const int64_t img = i / L, pix = i % L;
    s += dy[(img * K + k) * L + pix];
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int h = blockDim.x / 2; h > 0; h >>= 1) {
    if (threadIdx.x < h) part[threadIdx.x] += part[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] = part[0];
}

Shape checked(const Shape& s, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must have 4 entries, but got ", shape_str(s));
  return s;
}
}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const std::optional<Tensor>& b,
                      const Conv2dOptions& opt) {
  const char* op = "conv2d";
  const int dev =
      check_cuda_inputs(op, {{"input", &x_in}, {"weight", &w_in}, {"bias", opt_ptr(b)}});
  const Conv2dParams p = conv2d_params(x_in.shape(), w_in.shape(), opt, op);
  Tensor bias;
  if (b && b->defined()) {
    CNNCORE_CHECK_VALUE(b->dim() == 1 && b->size(0) == p.K, op, ": bias must have shape (", p.K,
                        ",), one value per output channel, but got ", shape_str(b->shape()));
    bias = cuda_f32(*b);
  }
  DeviceGuard guard(dev, op);
  Tensor x = cuda_f32(x_in), w = cuda_f32(w_in);
  Tensor y = Tensor::empty(p.output_shape(), DType::Float32, x.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Kg, d.N * d.OH * d.OW, d.Cg * d.R * d.S,
             FwdWeight{w.device_data<float>(), d.Kg, d.Cg * d.R * d.S},
             FwdInput{x.device_data<float>(), d},
             FwdStore{y.device_data<float>(), bias.defined() ? bias.device_data<float>() : nullptr,
                      d}, op);
  return y;
}

Tensor conv2d_backward_input(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                             const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_input";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"weight", &w_in}});
  const Conv2dParams p = conv2d_params(checked(x_shape, op, "input_shape"), w_in.shape(), opt, op);
  CNNCORE_CHECK_VALUE(dy_in.shape() == p.output_shape(), op, ": grad_output must have shape ",
                      shape_str(p.output_shape()), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in), w = cuda_f32(w_in);
  Tensor dx = Tensor::zeros(p.input_shape(), DType::Float32, dy.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Cg, d.N * d.H * d.W, d.Kg * d.R * d.S,
             BwdInWeight{w.device_data<float>(), d}, BwdInGrad{dy.device_data<float>(), d},
             BwdInStore{dx.device_data<float>(), d}, op);
  return dx;
}

Tensor conv2d_backward_weight(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                              const Conv2dOptions& opt) {
  const char* op = "conv2d_backward_weight";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}, {"input", &x_in}});
  const Conv2dParams p = conv2d_params(x_in.shape(), checked(w_shape, op, "weight_shape"), opt, op);
  CNNCORE_CHECK_VALUE(dy_in.shape() == p.output_shape(), op, ": grad_output must have shape ",
                      shape_str(p.output_shape()), ", but got ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in), x = cuda_f32(x_in);
  Tensor dw = Tensor::zeros(p.weight_shape(), DType::Float32, dy.device());
  const ConvDims d = dims_of(p);
  gemm_tiles(p.groups, d.Kg, d.Cg * d.R * d.S, d.N * d.OH * d.OW,
             BwdWGrad{dy.device_data<float>(), d}, BwdWInput{x.device_data<float>(), d},
             BwdWStore{dw.device_data<float>(), d}, op);
  return dw;
}

Tensor conv2d_backward_bias(const Tensor& dy_in) {
  const char* op = "conv2d_backward_bias";
  const int dev = check_cuda_inputs(op, {{"grad_output", &dy_in}});
  CNNCORE_CHECK_VALUE(dy_in.dim() == 4, op, ": grad_output must be 4-D, but got ", dy_in.dim(),
                      "-D with shape ", shape_str(dy_in.shape()));
  DeviceGuard guard(dev, op);
  Tensor dy = cuda_f32(dy_in);
  const int64_t N = dy.size(0), K = dy.size(1), L = dy.size(2) * dy.size(3);
  Tensor db = Tensor::zeros({K}, DType::Float32, dy.device());
  if (K == 0) return db;
  channel_sum_kernel<<<static_cast<unsigned>(K), kThreads>>>(dy.device_data<float>(),
                                                             db.device_data<float>(), N, K, L);
  check_launch(op);
  return db;
}

}  // namespace cnncore::cuda
