// Validation and shape arithmetic for conv2d / conv_transpose2d, done once per call and shared by
// the fast kernels, the reference twins, the bindings and Python shape inference.
#include <algorithm>
#include <cstdlib>
#include <limits>

#include "cnncore/ops/conv.hpp"
#include "cnncore/runtime.hpp"
#include "cpu/conv2d.hpp"
#include "cpu/winograd.hpp"

namespace cnncore {

namespace {

// Sizes beyond this cannot come from a real tensor and would overflow the arithmetic below
// (n + pad, dilation * (k - 1)); rejecting them keeps every later product in int64.
constexpr int64_t kMaxExtent = int64_t{1} << 31;

void check_rank4(const Shape& s, const char* op, const char* arg, const char* letters) {
  CNNCORE_CHECK_VALUE(s.size() == 4, op, ": ", arg, " must be 4-D ", letters, ", but got ",
                      s.size(), "-D with shape ", shape_str(s));
  for (int64_t v : s)
    CNNCORE_CHECK_VALUE(v > 0, op, ": ", arg,
                        " must not be empty (every size >= 1), but got shape ", shape_str(s));
  for (int64_t v : s)
    CNNCORE_CHECK_VALUE(v <= kMaxExtent, op, ": ", arg, " sizes must be at most ", kMaxExtent,
                        ", but got shape ", shape_str(s));
}

void check_range(int64_t v, int64_t lo, const char* op, const char* arg, const char* what) {
  CNNCORE_CHECK_VALUE(v >= lo, op, ": ", arg, " must be ", what, ", but got ", v);
  CNNCORE_CHECK_VALUE(v <= kMaxExtent, op, ": ", arg, " must be at most ", kMaxExtent,
                      ", but got ", v);
}

void check_options(const Conv2dOptions& o, const char* op, bool allow_same) {
  check_range(o.stride_h, 1, op, "stride", ">= 1");
  check_range(o.stride_w, 1, op, "stride", ">= 1");
  check_range(o.dilation_h, 1, op, "dilation", ">= 1");
  check_range(o.dilation_w, 1, op, "dilation", ">= 1");
  check_range(o.groups, 1, op, "groups", ">= 1");
  const Padding2d& p = o.padding;
  if (p.mode == Padding2d::Mode::Explicit) {
    for (int64_t v : {p.top, p.bottom, p.left, p.right}) check_range(v, 0, op, "padding", ">= 0");
  } else if (p.mode == Padding2d::Mode::Same) {
    CNNCORE_CHECK_VALUE(allow_same, op, ": padding must be an int or a pair of ints, but got "
                        "'same' (it has no meaning for a transposed convolution)");
  }
}

// TensorFlow's 'same': out = ceil(in / stride), the odd pixel of padding after (bottom/right).
// For stride 1 this is also PyTorch's rule.
void same_padding(int64_t n, int64_t k, int64_t stride, int64_t dil, int64_t& before,
                  int64_t& after) {
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + dil * (k - 1) + 1 - n, 0);
  before = total / 2;
  after = total - before;
}

}  // namespace

double Conv2dParams::flops() const {
  return 2.0 * double(N) * double(K) * double(OH) * double(OW) * double(C / groups) * double(R) *
         double(S);
}

Conv2dParams conv2d_params(const Shape& input, const Shape& weight, const Conv2dOptions& opt,
                           const char* op) {
  check_rank4(input, op, "input", "(N, C, H, W)");
  check_rank4(weight, op, "weight", "(out_channels, in_channels/groups, kH, kW)");
  check_options(opt, op, true);
  Conv2dParams p;
  p.N = input[0], p.C = input[1], p.H = input[2], p.W = input[3];
  p.K = weight[0], p.R = weight[2], p.S = weight[3];
  p.stride_h = opt.stride_h, p.stride_w = opt.stride_w;
  p.dil_h = opt.dilation_h, p.dil_w = opt.dilation_w;
  p.groups = opt.groups;
  CNNCORE_CHECK_VALUE(p.C == weight[1] * p.groups, op, ": input has ", p.C,
                      " channels but weight expects ", weight[1] * p.groups, " (groups=", p.groups,
                      ")");
  CNNCORE_CHECK_VALUE(p.K % p.groups == 0, op, ": weight's out_channels (", p.K,
                      ") must be divisible by groups (", p.groups, ")");
  switch (opt.padding.mode) {
    case Padding2d::Mode::Explicit:
      p.pad_t = opt.padding.top, p.pad_b = opt.padding.bottom;
      p.pad_l = opt.padding.left, p.pad_r = opt.padding.right;
      break;
    case Padding2d::Mode::Valid:
      break;
    case Padding2d::Mode::Same:
      same_padding(p.H, p.R, p.stride_h, p.dil_h, p.pad_t, p.pad_b);
      same_padding(p.W, p.S, p.stride_w, p.dil_w, p.pad_l, p.pad_r);
      break;
  }
  const int64_t span_h = p.dil_h * (p.R - 1) + 1, span_w = p.dil_w * (p.S - 1) + 1;
  CNNCORE_CHECK_VALUE(span_h <= p.H + p.pad_t + p.pad_b && span_w <= p.W + p.pad_l + p.pad_r, op,
                      ": kernel size ", span_h, "x", span_w,
                      (p.is_dilated() ? " (dilated)" : ""), " is larger than the padded input ",
                      p.H + p.pad_t + p.pad_b, "x", p.W + p.pad_l + p.pad_r);
  p.OH = conv_output_size(p.H, p.R, p.stride_h, p.pad_t + p.pad_b, p.dil_h);
  p.OW = conv_output_size(p.W, p.S, p.stride_w, p.pad_l + p.pad_r, p.dil_w);
  // Overflow guards for the tensors and the column buffer the kernels will allocate.
  shape_numel(p.output_shape(), op);
  shape_numel({p.C / p.groups, p.R, p.S, p.OH, p.OW}, op);
  return p;
}

Conv2dParams conv_transpose2d_params(const Shape& input, const Shape& weight,
                                     const Conv2dOptions& opt, int64_t output_padding_h,
                                     int64_t output_padding_w, const char* op) {
  check_rank4(input, op, "input", "(N, C_in, H, W)");
  check_rank4(weight, op, "weight", "(in_channels, out_channels/groups, kH, kW)");
  check_options(opt, op, false);
  CNNCORE_CHECK_VALUE(input[1] == weight[0], op, ": input has ", input[1],
                      " channels but weight expects ", weight[0], " (weight's first dimension, "
                      "groups=", opt.groups, ")");
  CNNCORE_CHECK_VALUE(weight[0] % opt.groups == 0, op, ": in_channels (", weight[0],
                      ") must be divisible by groups (", opt.groups, ")");
  const int64_t ops[2] = {output_padding_h, output_padding_w};
  const int64_t strides[2] = {opt.stride_h, opt.stride_w};
  const int64_t dils[2] = {opt.dilation_h, opt.dilation_w};
  for (int d = 0; d < 2; ++d) {
    CNNCORE_CHECK_VALUE(ops[d] >= 0 && ops[d] < std::max(strides[d], dils[d]), op,
                        ": output_padding must be >= 0 and smaller than either stride or "
                        "dilation (", std::max(strides[d], dils[d]), "), but got ", ops[d]);
  }
  const Padding2d& pd = opt.padding;
  const bool explicit_pad = pd.mode == Padding2d::Mode::Explicit;
  const int64_t pt = explicit_pad ? pd.top : 0, pb = explicit_pad ? pd.bottom : 0;
  const int64_t pl = explicit_pad ? pd.left : 0, pr = explicit_pad ? pd.right : 0;
  const int64_t OHt = conv_transpose_output_size(input[2], weight[2], opt.stride_h, pt + pb,
                                                 opt.dilation_h, output_padding_h);
  const int64_t OWt = conv_transpose_output_size(input[3], weight[3], opt.stride_w, pl + pr,
                                                 opt.dilation_w, output_padding_w);
  CNNCORE_CHECK_VALUE(OHt > 0 && OWt > 0, op, ": output size must be positive, but input ",
                      input[2], "x", input[3], " with this kernel, stride, padding and dilation "
                      "gives ", OHt, "x", OWt);
  Conv2dOptions eq = opt;
  eq.padding = Padding2d::asymmetric(pt, pb, pl, pr);
  Conv2dParams p = conv2d_params({input[0], weight[1] * opt.groups, OHt, OWt},
                                 {weight[0], weight[1], weight[2], weight[3]}, eq, op);
  // The conv over (OHt, OWt) gives at least input's size; output_padding >= stride would add
  // rows that the transposed conv's input does not have, so cut to the input's size.
  p.OH = input[2];
  p.OW = input[3];
  return p;
}

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Im2colGemm: return "im2col+gemm";
    case ConvAlgo::Gemm1x1: return "gemm-1x1";
    case ConvAlgo::DepthwiseDirect: return "depthwise-direct";
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::Winograd: return "winograd";
  }
  return "unknown";
}

namespace {
// The output must also cover the input pixel for pixel: conv_transpose2d's params cut OH / OW to
// its input's size, and with output_padding (allowed up to the dilation, so also at stride 1)
// the conv input has rows no output reads, which the product alone would leave unwritten.
bool gemm_1x1_fits(const Conv2dParams& p) {
  return p.is_1x1() && !p.is_strided() && !p.is_padded() && p.OH == p.H && p.OW == p.W;
}
// Few input channels per group: im2col's columns are then mostly copying (C = 3 gives 27 rows
// for a 3x3) and the GEMM's depth too short to pay for its packing; the register-blocked direct
// kernel measured 1.3-2x im2col + GEMM forward on LeNet (1 and 6 channels, 5x5) and the RGB
// first layers (3x3, 7x7/2, 11x11/4), Zen 4, 1 thread.
using conv_impl::kDirectMaxChannels;
bool direct_fits(const Conv2dParams& p) {
  return p.C / p.groups <= kDirectMaxChannels && !p.is_1x1();
}
}  // namespace

ConvAlgo select_conv_algo(const Conv2dParams& p) {
  if (const char* forced = std::getenv("CNNCORE_CONV_ALGO")) {
    const std::string f(forced);
    if (f == "im2col+gemm" || f == "im2col-per-image") return ConvAlgo::Im2colGemm;
    if (f == "direct") return p.is_depthwise() ? ConvAlgo::DepthwiseDirect : ConvAlgo::Direct;
    if (f == "gemm-1x1" && gemm_1x1_fits(p)) return ConvAlgo::Gemm1x1;
    if (f == "winograd" && conv_impl::winograd_fits(p)) return ConvAlgo::Winograd;
  }
  if (p.is_depthwise()) return ConvAlgo::DepthwiseDirect;
  if (gemm_1x1_fits(p)) return ConvAlgo::Gemm1x1;
  if (conv_impl::winograd_preferred(p, nullptr)) return ConvAlgo::Winograd;  // >= 16 channels
  if (direct_fits(p)) return ConvAlgo::Direct;  // <= 8 input channels per group
  if (conv_impl::direct_many_channels_fits(p)) return ConvAlgo::Direct;
  return ConvAlgo::Im2colGemm;
}

std::string conv2d_algorithm(const Conv2dParams& p) {
  Conv2dParams q;
  int64_t r0 = 0, s0 = 0;
  if (conv_impl::crop_taps(p, &q, &r0, &s0)) {
    const std::string inner = conv2d_algorithm(q);
    const size_t colon = inner.find(": ");
    return inner.substr(0, colon) + ": " + std::to_string(p.R) + "x" + std::to_string(p.S) +
           " kernel cropped to " + std::to_string(q.R) + "x" + std::to_string(q.S) +
           " (the other taps read only padding); " + inner.substr(colon + 2);
  }
  const ConvAlgo a = select_conv_algo(p);
  std::string why;
  switch (a) {
    case ConvAlgo::DepthwiseDirect:
      why = "groups == in_channels (" + std::to_string(p.groups) + "), channel multiplier " +
            std::to_string(p.K / p.C) + ": direct SIMD kernel over output rows, no im2col" +
            (conv_impl::depthwise_stride2_fits(p)
                 ? "; stride 2: even/odd columns picked in registers, no phase-split copy"
                 : "");
      break;
    case ConvAlgo::Direct:
      why = std::to_string(p.C / p.groups) + " input channels per group" +
            (p.C / p.groups > kDirectMaxChannels
                 ? std::string(", strided, ") + std::to_string(p.N) +
                       " images (>= 2 per thread), rows of " + std::to_string(p.OW)
                 : std::string()) +
            ": register-blocked direct kernel, no im2col" +
            (conv_impl::direct_forward_block_channels(p) >= 32
                 ? "; forward: channel vectors x row pixels, blocks of " +
                       std::to_string(conv_impl::direct_forward_block_channels(p)) + " channels"
                 : std::string()) +
            "; backward-input " +
            (conv_impl::direct_backward_input_fits(p)
                 ? (conv_impl::direct_backward_input_by_lanes(p)
                        ? "direct (images as lanes, only taps inside dy)"
                    : conv_impl::direct_backward_input_by_rows(p)
                        ? "direct (rows across images, padding rows skipped)"
                        : "direct")
                 : "im2col+gemm") +
            ", backward-weight " +
            (conv_impl::direct_backward_weight_fits(p)
                 ? (conv_impl::direct_weight_by_channels(p) ? "direct (channels as lanes)"
                                                            : "direct")
                 : "im2col+gemm");
      break;
    case ConvAlgo::Gemm1x1:
      why = conv_impl::batch_columns(p)
                ? "1x1 kernel, stride 1, no padding, " + std::to_string(p.OH * p.OW) +
                      " pixels per image: the batch's columns gathered into one GEMM"
                : "1x1 kernel, stride 1, no padding: the input is already the column matrix";
      break;
    case ConvAlgo::Winograd:
      if (!conv_impl::winograd_preferred(p, &why))
        why = "forced by CNNCORE_CONV_ALGO (" + why + ")";
      break;
    case ConvAlgo::Im2colGemm:
      why = "general case: columns of " + std::to_string(p.C / p.groups * p.R * p.S) + " x " +
            std::to_string(p.OH * p.OW) +
            (conv_impl::batch_columns(p) ? " per image, the batch's gathered into one GEMM per group"
                                         : " per image and group");
      break;
  }
  if (a == ConvAlgo::Im2colGemm || a == ConvAlgo::Gemm1x1)
    why += conv_impl::split_batch(p) && !conv_impl::batch_columns(p) ? "; threads over the batch"
                                                                  : "; threads inside the GEMM";
  if ((a == ConvAlgo::Im2colGemm || a == ConvAlgo::Winograd) &&
      !(conv_impl::batch_columns(p) && p.OH * p.OW < 16) && conv_impl::tap_gemm_weight_fits(p))
    why += "; backward-weight: one GEMM per kernel tap over a padded copy, no im2col";
  return std::string(conv_algo_name(a)) + ": " + why + " (isa " + isa_name(active_isa()) + ")";
}

}  // namespace cnncore
