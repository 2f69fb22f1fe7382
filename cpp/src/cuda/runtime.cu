// The CUDA runtime side of the backend: device discovery, the caching allocator, host<->device
// copies and the strided copy / fill kernels tensor.cpp needs. Linked with the static cudart,
// so a wheel carries no libcudart: the driver (libcuda) is the only run-time requirement, and
// without it device_count() is 0 with the driver's reason, never a failed import.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.cuh"

namespace cnncore::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* op, const char* what) {
  cudaGetLastError();  // clear a sticky-free error so the next call starts clean
  const std::string msg = detail::concat(op, ": CUDA error in ", what, ": ",
                                         cudaGetErrorString(err), " (", cudaGetErrorName(err), ")");
  if (err == cudaErrorMemoryAllocation) throw MemoryError(msg);
  throw Error(msg);
}

DeviceGuard::DeviceGuard(int device, const char* op) {
  check_cuda(cudaGetDevice(&previous_), op, "cudaGetDevice");
  if (previous_ != device) check_cuda(cudaSetDevice(device), op, "cudaSetDevice");
}
DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0)
    cudaSetDevice(previous_);
}

bool compiled() { return true; }

namespace {
struct Discovery {
  int count = 0;
  std::string reason;
};
const Discovery& discovery() {
  // Asked once: the answer does not change within a process, and the first call is slow.
  static const Discovery d = [] {
    Discovery r;
    const cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.reason = detail::concat("no CUDA device is available: ", cudaGetErrorString(err), " (",
                                cudaGetErrorName(err), ")");
    } else if (r.count == 0) {
      r.reason = "no CUDA device is available: the driver reports 0 GPUs";
    }
    return r;
  }();
  return d;
}
}  // namespace

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

void require_device(const Device& device, const char* op) {
  const Discovery& d = discovery();
  if (d.count == 0) throw Error(detail::concat(op, ": ", d.reason));
  if (device.index < 0 || device.index >= d.count)
    throw Error(detail::concat(op, ": CUDA device ", device.index, " does not exist (", d.count,
                               " device", d.count == 1 ? "" : "s", " present)"));
}

int current_device() {
  int d = 0;
  require_device(Device{DeviceType::CUDA, 0}, "current_device");
  check_cuda(cudaGetDevice(&d), "current_device", "cudaGetDevice");
  return d;
}

void synchronize(int device) {
  require_device(Device{DeviceType::CUDA, device}, "synchronize");
  DeviceGuard g(device, "synchronize");
  check_cuda(cudaDeviceSynchronize(), "synchronize", "cudaDeviceSynchronize");
}

// ---- caching allocator -------------------------------------------------------------------------
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, more than most
// kernels: freed blocks go to a free list keyed by their size class and are handed out again.
// Small requests round up to 512 bytes, large ones (>= 1 MiB) to 2 MiB, so a training loop's
// repeating shapes hit the same classes. All work is on the default stream, so a block freed by
// the host may be reused at once: later kernels are ordered after the ones that used it.
namespace {
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeThreshold = size_t{1} << 20;
constexpr size_t kLargeRound = size_t{2} << 20;

size_t size_class(size_t bytes) {
  const size_t r = bytes < kLargeThreshold ? kSmallRound : kLargeRound;
  return (std::max<size_t>(bytes, 1) + r - 1) / r * r;
}

struct DeviceHeap {
  std::unordered_map<size_t, std::vector<void*>> free_blocks;
  std::unordered_map<void*, size_t> live;  // block -> its size class
  int64_t allocated = 0, peak = 0, reserved = 0;
};

struct Allocator {
  std::mutex mu;
  std::vector<DeviceHeap> heaps;
  DeviceHeap& heap(int device) {
    if (static_cast<int>(heaps.size()) <= device) heaps.resize(device + 1);
    return heaps[device];
  }
  void free_cached(int device) {
    DeviceHeap& h = heap(device);
    DeviceGuard g(device, "empty_cache");
    for (auto& kv : h.free_blocks)
      for (void* p : kv.second) {
        cudaFree(p);
        h.reserved -= static_cast<int64_t>(kv.first);
      }
    h.free_blocks.clear();
  }
};
// Never destroyed: tensors released during interpreter shutdown still find it.
Allocator& allocator() {
  static Allocator* a = new Allocator();
  return *a;
}
}  // namespace

void* allocate(size_t bytes, int device, const char* op) {
  const size_t cls = size_class(bytes);
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  DeviceHeap& h = a.heap(device);
  void* p = nullptr;
  auto it = h.free_blocks.find(cls);
  if (it != h.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    DeviceGuard g(device, op);
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      a.free_cached(device);
      err = cudaMalloc(&p, cls);
    }
    if (err != cudaSuccess)
      throw_cuda_error(err, op, detail::concat("cudaMalloc of ", cls, " bytes").c_str());
    h.reserved += static_cast<int64_t>(cls);
  }
  h.live[p] = cls;
  h.allocated += static_cast<int64_t>(cls);
  h.peak = std::max(h.peak, h.allocated);
  return p;
}

void release(void* ptr, int device) {
  if (!ptr) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  DeviceHeap& h = a.heap(device);
  auto it = h.live.find(ptr);
  if (it == h.live.end()) return;  // not ours: nothing to give back
  h.allocated -= static_cast<int64_t>(it->second);
  h.free_blocks[it->second].push_back(ptr);
  h.live.erase(it);
}

void empty_cache() {
  if (device_count() == 0) return;
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  for (int d = 0; d < static_cast<int>(a.heaps.size()); ++d) a.free_cached(d);
}

namespace {
template <class F>
int64_t heap_stat(int device, F f) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return device < static_cast<int>(a.heaps.size()) ? f(a.heaps[device]) : 0;
}
}  // namespace
int64_t memory_allocated(int device) {
  return heap_stat(device, [](DeviceHeap& h) { return h.allocated; });
}
int64_t max_memory_allocated(int device) {
  return heap_stat(device, [](DeviceHeap& h) { return h.peak; });
}
int64_t memory_reserved(int device) {
  return heap_stat(device, [](DeviceHeap& h) { return h.reserved; });
}
void reset_peak_memory_stats(int device) {
  Allocator& a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  if (device < static_cast<int>(a.heaps.size())) a.heaps[device].peak = a.heaps[device].allocated;
}

// ---- copies ------------------------------------------------------------------------------------
// A pageable host buffer is copied by the driver through its own small staging area, one chunk at
// a time with the CPU waiting. For large copies two pinned chunks do better: the host memcpy into
// one overlaps the DMA out of the other. Below 1 MiB a plain cudaMemcpy is faster.
namespace {
constexpr size_t kStagingChunk = size_t{4} << 20;
constexpr size_t kStagingThreshold = size_t{1} << 20;

struct Staging {
  std::mutex mu;
  void* buf[2] = {nullptr, nullptr};
  cudaEvent_t done[2] = {nullptr, nullptr};
  bool ready = false;
  bool init(const char* op) {
    if (ready) return true;
    for (int i = 0; i < 2; ++i) {
      if (cudaMallocHost(&buf[i], kStagingChunk) != cudaSuccess ||
          cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        return false;  // no pinned memory to spare: fall back to plain copies
      }
    }
    ready = true;
    return true;
  }
};
Staging& staging() {
  static Staging* s = new Staging();
  return *s;
}
}  // namespace

void copy_host_to_device(void* dst, const void* src, size_t bytes, int device) {
  const char* op = "to";
  DeviceGuard g(device, op);
  Staging& st = staging();
  std::unique_lock<std::mutex> lock(st.mu);
  if (bytes < kStagingThreshold || !st.init(op)) {
    lock.unlock();
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), op, "cudaMemcpy host->device");
    return;
  }
  size_t done = 0;
  for (int k = 0; done < bytes; ++k) {
    const int b = k & 1;
    const size_t n = std::min(kStagingChunk, bytes - done);
    check_cuda(cudaEventSynchronize(st.done[b]), op, "staging wait");  // its previous DMA is over
    std::memcpy(st.buf[b], static_cast<const char*>(src) + done, n);
    check_cuda(cudaMemcpyAsync(static_cast<char*>(dst) + done, st.buf[b], n,
                               cudaMemcpyHostToDevice, 0), op, "cudaMemcpyAsync host->device");
    check_cuda(cudaEventRecord(st.done[b], 0), op, "cudaEventRecord");
    done += n;
  }
  check_cuda(cudaStreamSynchronize(0), op, "cudaStreamSynchronize");
}

void copy_device_to_host(void* dst, const void* src, size_t bytes, int device) {
  const char* op = "cpu";
  DeviceGuard g(device, op);
  Staging& st = staging();
  std::unique_lock<std::mutex> lock(st.mu);
  if (bytes < kStagingThreshold || !st.init(op)) {
    lock.unlock();
    check_cuda(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), op, "cudaMemcpy device->host");
    return;
  }
  // Queue chunk k+1's DMA before copying chunk k out of its pinned buffer.
  const size_t chunks = (bytes + kStagingChunk - 1) / kStagingChunk;
  auto enqueue = [&](size_t k) {
    const size_t off = k * kStagingChunk, n = std::min(kStagingChunk, bytes - off);
    check_cuda(cudaMemcpyAsync(st.buf[k & 1], static_cast<const char*>(src) + off, n,
                               cudaMemcpyDeviceToHost, 0), op, "cudaMemcpyAsync device->host");
    check_cuda(cudaEventRecord(st.done[k & 1], 0), op, "cudaEventRecord");
  };
  enqueue(0);
  for (size_t k = 0; k < chunks; ++k) {
    check_cuda(cudaEventSynchronize(st.done[k & 1]), op, "staging wait");
    if (k + 1 < chunks) enqueue(k + 1);
    const size_t off = k * kStagingChunk, n = std::min(kStagingChunk, bytes - off);
    std::memcpy(static_cast<char*>(dst) + off, st.buf[k & 1], n);
  }
}

void copy_device_to_device(void* dst, const void* src, size_t bytes, int device) {
  DeviceGuard g(device, "clone");
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0), "clone",
             "cudaMemcpyAsync device->device");
}

void zero_bytes(void* ptr, size_t bytes, int device) {
  DeviceGuard g(device, "zero_");
  check_cuda(cudaMemsetAsync(ptr, 0, bytes, 0), "zero_", "cudaMemsetAsync");
}

// ---- strided copies and fill -------------------------------------------------------------------
StridedLayout layout_of(const Tensor& t, const char* op) {
  CNNCORE_CHECK_VALUE(t.dim() <= kMaxDims, op, ": CUDA kernels handle up to ", kMaxDims,
                      " dimensions, but got ", t.dim());
  StridedLayout l{};
  l.ndim = static_cast<int>(t.dim());
  for (int i = 0; i < l.ndim; ++i) {
    l.shape[i] = t.shape()[i];
    l.strides[i] = t.strides()[i];
  }
  return l;
}

namespace {
template <class T>
__global__ void gather_kernel(const T* src, StridedLayout l, T* dst, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) dst[i] = src[strided_offset(l, i)];
}
template <class T>
__global__ void scatter_kernel(const T* src, StridedLayout l, T* dst, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) dst[strided_offset(l, i)] = src[i];
}
__global__ void fill_kernel(float* p, float v, int64_t n) {
  CNNCORE_CUDA_LOOP(i, n) p[i] = v;
}
}  // namespace

namespace {
// Copies between a contiguous buffer and a strided tensor, either way; 4- and 8-byte elements
// move as raw bits.
void strided_copy(const Tensor& contiguous, const Tensor& strided, bool to_strided,
                  const char* op) {
  const int64_t n = strided.numel();
  if (n == 0) return;
  DeviceGuard g(strided.device().index, op);
  const StridedLayout l = layout_of(strided, op);
  const unsigned grid = grid_for(n);
  if (strided.dtype() == DType::Float32) {
    auto* c = contiguous.device_data<uint32_t>();
    auto* s = strided.device_data<uint32_t>();
    if (to_strided) scatter_kernel<<<grid, kThreads>>>(c, l, s, n);
    else gather_kernel<<<grid, kThreads>>>(s, l, c, n);
  } else {
    auto* c = contiguous.device_data<uint64_t>();
    auto* s = strided.device_data<uint64_t>();
    if (to_strided) scatter_kernel<<<grid, kThreads>>>(c, l, s, n);
    else gather_kernel<<<grid, kThreads>>>(s, l, c, n);
  }
  check_launch(op);
}
}  // namespace

void gather_strided(const Tensor& src, Tensor& out) { strided_copy(out, src, false, "contiguous"); }
void scatter_strided(const Tensor& src, Tensor& dst) { strided_copy(src, dst, true, "copy_"); }

void fill(Tensor& t, float value) {
  const int64_t n = t.numel();
  if (n == 0) return;
  DeviceGuard g(t.device().index, "fill_");
  fill_kernel<<<grid_for(n), kThreads>>>(t.device_data<float>(), value, n);
  check_launch("fill_");
}

int check_cuda_inputs(const char* op,
                      std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  check_same_device(op, tensors);
  int device = -1;
  for (const auto& p : tensors) {
    if (!p.second || !p.second->defined()) continue;
    CNNCORE_CHECK_TYPE(p.second->dtype() == DType::Float32, op, ": ", p.first,
                       " must be float32, but got ", dtype_name(p.second->dtype()));
    if (!p.second->is_cuda())
      throw Error(detail::concat(op, ": ", p.first, " is on ", p.second->device().str(),
                                 ", but the op runs on CUDA"));
    device = p.second->device().index;
  }
  return device;
}

}  // namespace cnncore::cuda
