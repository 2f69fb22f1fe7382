// The GEMM's run-time choices (gemm_tile.cuh): the TF32 switches cnncore.backends sets and the
// device facts that pick the tile and the math.
#include <atomic>

#include "gemm_tile.cuh"

namespace cnncore::cuda {
namespace {
std::atomic<int> g_matmul_precision{0};
std::atomic<bool> g_conv_allow_tf32{false};
}  // namespace

void set_matmul_precision(int precision) { g_matmul_precision = precision; }
int matmul_precision() { return g_matmul_precision; }
void set_conv_allow_tf32(bool allow) { g_conv_allow_tf32 = allow; }
bool conv_allow_tf32() { return g_conv_allow_tf32; }

bool tf32_supported(int device) {
  if (device < 0 || device >= device_count()) return false;
  int major = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return major >= 8;
}

GemmDevice gemm_device(const char* op) {
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), op, "cudaGetDevice");
  GemmDevice g;
  check_cuda(cudaDeviceGetAttribute(&g.sm_count, cudaDevAttrMultiProcessorCount, dev), op,
             "cudaDeviceGetAttribute");
  check_cuda(cudaDeviceGetAttribute(&g.cc_major, cudaDevAttrComputeCapabilityMajor, dev), op,
             "cudaDeviceGetAttribute");
  return g;
}

}  // namespace cnncore::cuda
