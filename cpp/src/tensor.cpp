#include "cnncore/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cuda_api.hpp"
#include "parallel.hpp"

namespace cnncore {

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) os << ", ";
    os << shape[i];
  }
  if (shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

const char* dtype_name(DType d) { return d == DType::Float32 ? "float32" : "int64"; }
size_t dtype_size(DType d) { return d == DType::Float32 ? 4 : 8; }

int64_t shape_numel(const Shape& shape, const char* op) {
  int64_t n = 1;
  for (int64_t s : shape) {
    CNNCORE_CHECK_VALUE(s >= 0, op, ": sizes must be non-negative, but got shape ", shape_str(shape));
    CNNCORE_CHECK_VALUE(!__builtin_mul_overflow(n, s, &n), op, ": shape ", shape_str(shape),
                        " has more elements than fit in a 64-bit integer");
  }
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

std::string Device::str() const {
  return type == DeviceType::CPU ? std::string("cpu") : detail::concat("cuda:", index);
}

Device Device::parse(const std::string& name, const char* op) {
  if (name == "cpu") return {};
  if (name == "cuda") return {DeviceType::CUDA, 0};
  const std::string prefix = "cuda:";
  bool ok = name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
            name.size() - prefix.size() <= 9;
  for (size_t i = prefix.size(); ok && i < name.size(); ++i) ok = name[i] >= '0' && name[i] <= '9';
  CNNCORE_CHECK_VALUE(ok, op, ": expected a device 'cpu', 'cuda' or 'cuda:<index>' (index >= 0), "
                      "but got '", name, "'");
  return {DeviceType::CUDA, std::stoi(name.substr(prefix.size()))};
}

Storage::~Storage() {
  if (release) release(data);
}

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeMin = size_t{4} << 20;

// Freed blocks of >= 4 MiB, kept for the next allocation of the same rounded size. A training
// step frees and re-allocates the same activation and gradient sizes every iteration; without
// reuse each one comes back from the kernel as fresh pages that are zeroed and faulted in on
// first write, which costs more than the kernels writing them (63% of a depthwise backward's
// time). Bounded by CNNCORE_HOST_CACHE_MB (default 512; 0 turns reuse off); a failed allocation
// empties it and retries. Never destroyed: tensors may be freed during static destruction.
class HostBlockCache {
 public:
  static HostBlockCache& get() {
    static HostBlockCache* cache = new HostBlockCache();
    return *cache;
  }
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= bytes;
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= limit_) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  size_t release_all() {
    std::map<size_t, std::vector<void*>> blocks;
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks.swap(free_);
      n = cached_;
      cached_ = 0;
    }
    for (auto& kv : blocks)
      for (void* p : kv.second) std::free(p);
    return n;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  HostBlockCache() {
    limit_ = size_t{512} << 20;
    if (const char* env = std::getenv("CNNCORE_HOST_CACHE_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(env, &end, 10);
      if (end != env && *end == '\0' && mb <= (size_t{1} << 30)) limit_ = size_t(mb) << 20;
    }
  }
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = 0;
};

std::shared_ptr<Storage> allocate(int64_t numel, DType dtype, const char* op) {
  size_t bytes = 0;
  CNNCORE_CHECK_VALUE(!__builtin_mul_overflow(static_cast<size_t>(numel), dtype_size(dtype), &bytes),
                      op, ": ", numel, " elements do not fit in memory");
  auto st = std::make_shared<Storage>();
  size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  CNNCORE_CHECK_VALUE(rounded >= bytes, op, ": ", numel, " elements do not fit in memory");
  // Large blocks come straight from mmap (glibc) and are faulted in page by page on first
  // write; on a loaded VM a 4 KiB fault costs ~2 us, more than the conv that writes it
  // (a 38 MB gradient: 9,400 faults, ~20 ms). Transparent huge pages cut that 512-fold; the
  // kernel's default here is "madvise", so ask for them on blocks of at least 4 MiB, and keep
  // such blocks for reuse when they are freed (HostBlockCache).
  const bool huge = rounded >= kHugeMin;
  if (huge) rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
  CNNCORE_CHECK_VALUE(rounded >= bytes, op, ": ", numel, " elements do not fit in memory");
  void* p = huge ? HostBlockCache::get().take(rounded) : nullptr;
  if (!p) {
    p = std::aligned_alloc(huge ? kHugePage : kAlign, rounded);
    if (!p && huge && HostBlockCache::get().release_all() > 0)
      p = std::aligned_alloc(kHugePage, rounded);
    if (!p)
      throw MemoryError(detail::concat(op, ": cannot allocate ", bytes, " bytes (", numel,
                                       " elements): out of memory"));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
  }
  st->data = p;
  st->nbytes = bytes;
  if (huge)
    st->release = [rounded](void* q) { HostBlockCache::get().give(q, rounded); };
  else
    st->release = [](void* q) { std::free(q); };
  return st;
}

std::shared_ptr<Storage> allocate_on(int64_t numel, DType dtype, Device device, const char* op) {
  if (!device.is_cuda()) return allocate(numel, dtype, op);
  size_t bytes = 0;
  CNNCORE_CHECK_VALUE(
      !__builtin_mul_overflow(static_cast<size_t>(numel), dtype_size(dtype), &bytes), op, ": ",
      numel, " elements do not fit in memory");
  cuda::require_device(device, op);
  auto st = std::make_shared<Storage>();
  st->data = cuda::allocate(bytes, device.index, op);
  st->nbytes = bytes;
  st->device = device;
  const int index = device.index;
  st->release = [index](void* q) { cuda::release(q, index); };
  return st;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
  const int64_t lo = -std::max<int64_t>(ndim, 1), hi = std::max<int64_t>(ndim, 1) - 1;
  if (d < lo || d > hi)
    throw IndexError(detail::concat(op, ": dim must be in [", lo, ", ", hi, "], but got ", d));
  return d < 0 ? d + std::max<int64_t>(ndim, 1) : d;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

size_t empty_host_cache() { return HostBlockCache::get().release_all(); }
size_t host_cache_bytes() { return HostBlockCache::get().cached(); }

Tensor Tensor::empty(const Shape& shape, DType dtype) { return empty(shape, dtype, Device{}); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  const int64_t n = shape_numel(shape, "empty");
  t.storage_ = allocate_on(n, dtype, device, "empty");
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  if (!device.is_cuda()) return zeros(shape, dtype);
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.storage_->data, 0, t.storage_->nbytes);
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::Float32);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype,
                         std::function<void(void*)> release) {
  shape_numel(shape, "from_blob");
  CNNCORE_CHECK_VALUE(strides.empty() || strides.size() == shape.size(),
                      "from_blob: strides must have one entry per dimension (", shape.size(),
                      "), but got ", strides.size());
  Tensor t;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->release = std::move(release);
  t.shape_ = shape;
  t.strides_ = strides.empty() ? contiguous_strides(shape) : strides;
  t.dtype_ = dtype;
  return t;
}

int64_t Tensor::size(int64_t d) const { return shape_[wrap_dim(d, dim(), "size")]; }

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

bool Tensor::is_contiguous() const {
  if (block_) return false;
  if (numel() == 0) return true;  // torch's rule: no element is out of place
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != expect) return false;
    expect *= shape_[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  if (!storage_) throw ValueError("tensor: the tensor is undefined");
  if (storage_->device.is_cuda())
    throw Error(detail::concat("tensor: the data is on ", storage_->device.str(),
                               ", but this CPU code reads host memory; move it with .cpu() first"));
  return device_data();
}

void* Tensor::device_data() const {
  if (!storage_) throw ValueError("tensor: the tensor is undefined");
  return static_cast<char*>(storage_->data) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

template <>
float* Tensor::data<float>() const {
  CNNCORE_CHECK_TYPE(dtype_ == DType::Float32, "tensor: expected float32 data, but the tensor is ",
                     dtype_name(dtype_));
  return static_cast<float*>(raw_data());
}
template <>
int64_t* Tensor::data<int64_t>() const {
  CNNCORE_CHECK_TYPE(dtype_ == DType::Int64, "tensor: expected int64 data, but the tensor is ",
                     dtype_name(dtype_));
  return static_cast<int64_t*>(raw_data());
}

namespace {
// Copies a strided tensor of any rank into contiguous memory, element size esz.
template <class T>
void gather_strided(const T* src, const Shape& shape, const Shape& strides, T* dst) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (n == 0) return;
  if (nd == 0) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = shape[nd - 1], inner_stride = strides[nd - 1];
  const int64_t outer = n / inner;
  parallel_for(0, outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)),
               [&](int64_t b, int64_t e) {
                 std::vector<int64_t> idx(nd, 0);
                 for (int64_t o = b; o < e; ++o) {
                   int64_t rem = o, off = 0;
                   for (int64_t d = nd - 2; d >= 0; --d) {
                     idx[d] = rem % shape[d];
                     rem /= shape[d];
                     off += idx[d] * strides[d];
                   }
                   const T* s = src + off;
                   T* out = dst + o * inner;
                   if (inner_stride == 1) {
                     std::memcpy(out, s, sizeof(T) * inner);
                   } else {
                     for (int64_t i = 0; i < inner; ++i) out[i] = s[i * inner_stride];
                   }
                 }
               });
}
}  // namespace

Tensor Tensor::contiguous() const {
  if (!defined()) throw ValueError("contiguous: the tensor is undefined");
  if (block_) return to_strided();
  if (is_contiguous()) return *this;
  Tensor out = empty(shape_, dtype_, device());
  if (is_cuda()) {
    cuda::gather_strided(*this, out);
    return out;
  }
  if (dtype_ == DType::Float32)
    gather_strided(data<float>(), shape_, strides_, out.data<float>());
  else
    gather_strided(data<int64_t>(), shape_, strides_, out.data<int64_t>());
  return out;
}

Tensor Tensor::clone() const {
  Tensor c = contiguous();
  if (c.storage_ != storage_) return c;
  Tensor out = empty(shape_, dtype_, device());
  if (is_cuda()) {
    cuda::copy_device_to_device(out.device_data(), c.device_data(),
                                static_cast<size_t>(numel()) * dtype_size(dtype_),
                                device().index);
    return out;
  }
  std::memcpy(out.raw_data(), c.raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_));
  return out;
}

namespace {
Shape infer_view_shape(Shape shape, int64_t numel, const Shape& from, const char* op) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      CNNCORE_CHECK_VALUE(infer < 0, op, ": only one dimension can be -1, but got shape ",
                          shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      CNNCORE_CHECK_VALUE(shape[i] >= 0, op, ": sizes must be non-negative or -1, but got shape ",
                          shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    CNNCORE_CHECK_VALUE(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape),
                        " is invalid for input of size ", numel, " (shape ", shape_str(from), ")");
    shape[infer] = numel / known;
  }
  CNNCORE_CHECK_VALUE(shape_numel(shape, op) == numel, op, ": shape ", shape_str(shape),
                      " is invalid for input of size ", numel, " (shape ", shape_str(from), ")");
  return shape;
}
}  // namespace

Tensor Tensor::view(Shape shape) const {
  CNNCORE_CHECK_VALUE(is_contiguous(), "view: the tensor is not contiguous (shape ",
                      shape_str(shape_), "); use reshape() instead");
  Tensor t = *this;
  t.shape_ = infer_view_shape(std::move(shape), numel(), shape_, "view");
  t.strides_ = contiguous_strides(t.shape_);
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (is_contiguous()) return view(std::move(shape));
  return contiguous().view(std::move(shape));
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  CNNCORE_CHECK_VALUE(!block_, "permute: blocked tensors must be converted with to_strided() first");
  CNNCORE_CHECK_VALUE(static_cast<int64_t>(dims.size()) == dim(), "permute: dims must list ", dim(),
                      " dimensions, but got ", dims.size());
  std::vector<bool> seen(dims.size(), false);
  Tensor t = *this;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    CNNCORE_CHECK_VALUE(!seen[d], "permute: dims must be a permutation, but ", dims[i],
                        " appears twice");
    seen[d] = true;
    t.shape_[i] = shape_[d];
    t.strides_[i] = strides_[d];
  }
  return t;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  CNNCORE_CHECK_VALUE(!block_, "narrow: blocked tensors must be converted with to_strided() first");
  d = wrap_dim(d, dim(), "narrow");
  CNNCORE_CHECK_VALUE(start >= 0 && length >= 0 && start + length <= shape_[d], "narrow: start (",
                      start, ") + length (", length, ") must be within dimension ", d, " of size ",
                      shape_[d]);
  Tensor t = *this;
  t.offset_ += start * strides_[d];
  t.shape_[d] = length;
  return t;
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  CNNCORE_CHECK_VALUE(!block_, "as_strided: blocked tensors must be converted with to_strided() first");
  CNNCORE_CHECK_VALUE(defined(), "as_strided: the tensor is undefined");
  CNNCORE_CHECK_VALUE(shape.size() == strides.size(), "as_strided: shape ", shape_str(shape),
                      " and strides ", shape_str(strides), " must have the same length");
  CNNCORE_CHECK_VALUE(offset >= 0, "as_strided: offset must be >= 0, but got ", offset);
  // The view must stay within the elements this tensor spans (its storage's size is unknown for
  // wrapped numpy memory): from its first element to its last.
  int64_t span = 0;
  bool self_empty = false;
  for (size_t i = 0; i < shape_.size(); ++i) {
    CNNCORE_CHECK_VALUE(strides_[i] >= 0, "as_strided: the tensor has a negative stride");
    if (shape_[i] == 0) self_empty = true;
    else span += (shape_[i] - 1) * strides_[i];
  }
  const int64_t capacity = self_empty ? 0 : span + 1 - offset;
  int64_t last = 0;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    CNNCORE_CHECK_VALUE(shape[i] >= 0 && strides[i] >= 0, "as_strided: sizes and strides must be "
                        ">= 0, but got shape ", shape_str(shape), " and strides ", shape_str(strides));
    if (shape[i] == 0) empty = true;
    else last += (shape[i] - 1) * strides[i];
  }
  CNNCORE_CHECK_VALUE(empty || last < capacity, "as_strided: shape ", shape_str(shape),
                      " with strides ", shape_str(strides), " at offset ", offset,
                      " reaches past the storage");
  Tensor t = *this;
  t.offset_ += offset;
  t.shape_ = shape;
  t.strides_ = strides;
  return t;
}

Tensor Tensor::expand(const Shape& shape) const {
  CNNCORE_CHECK_VALUE(!block_, "expand: blocked tensors must be converted with to_strided() first");
  CNNCORE_CHECK_VALUE(shape.size() >= shape_.size(), "expand: cannot expand shape ",
                      shape_str(shape_), " to ", shape_str(shape));
  Tensor t = *this;
  const size_t lead = shape.size() - shape_.size();
  t.shape_ = shape;
  t.strides_.assign(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) continue;
    const int64_t s = shape_[i - lead];
    CNNCORE_CHECK_VALUE(s == shape[i] || s == 1, "expand: cannot expand shape ", shape_str(shape_),
                        " to ", shape_str(shape));
    t.strides_[i] = (s == shape[i]) ? strides_[i - lead] : 0;
  }
  return t;
}

Tensor Tensor::to(Device target) const {
  check_defined(*this, "to", "tensor");
  const Device here = device();
  if (here == target) return contiguous();
  const char* op = "to";
  if (target.is_cuda()) cuda::require_device(target, op);
  Tensor src = here.is_cuda() ? contiguous() : as_nchw(*this);
  Tensor out = empty(shape_, dtype_, target);
  const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype_);
  if (bytes == 0) return out;
  if (!here.is_cuda())
    cuda::copy_host_to_device(out.device_data(), src.raw_data(), bytes, target.index);
  else if (!target.is_cuda())
    cuda::copy_device_to_host(out.raw_data(), src.device_data(), bytes, here.index);
  else  // across GPUs: through the host, simple and rare
    return src.to(Device{}).to(target);
  return out;
}

Tensor Tensor::to_blocked(int block) const {
  CNNCORE_CHECK_VALUE(block == 8 || block == 16, "to_blocked: block must be 8 or 16, but got ", block);
  CNNCORE_CHECK_VALUE(dim() == 4, "to_blocked: expected a 4-D (N, C, H, W) tensor, but got shape ",
                      shape_str(shape_));
  check_dtype(*this, DType::Float32, "to_blocked", "input");
  if (block_ == block) return *this;
  Tensor src = as_nchw(*this);
  const int64_t N = shape_[0], C = shape_[1], HW = shape_[2] * shape_[3], CB = ceil_div(C, block);
  Tensor t;
  t.storage_ = allocate(shape_numel({N, CB, HW, block}, "to_blocked"), DType::Float32, "to_blocked");
  t.shape_ = shape_;
  t.strides_ = contiguous_strides(shape_);
  t.block_ = block;
  const float* s = src.data<float>();
  float* d = static_cast<float*>(t.storage_->data);
  parallel_for(0, N * CB, 1, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / CB, cb = nc % CB;
      float* out = d + nc * HW * block;
      for (int64_t i = 0; i < HW; ++i)
        for (int64_t j = 0; j < block; ++j) {
          const int64_t c = cb * block + j;
          out[i * block + j] = c < C ? s[(n * C + c) * HW + i] : 0.0f;
        }
    }
  });
  return t;
}

Tensor Tensor::to_strided() const {
  if (!block_) return *this;
  const int64_t N = shape_[0], C = shape_[1], HW = shape_[2] * shape_[3], block = block_,
                CB = ceil_div(C, block);
  Tensor out = empty(shape_, DType::Float32);
  const float* s = static_cast<const float*>(storage_->data) + offset_;
  float* d = out.data<float>();
  parallel_for(0, N * C, 1, [&](int64_t b, int64_t e) {
    for (int64_t nc = b; nc < e; ++nc) {
      const int64_t n = nc / C, c = nc % C;
      const float* in = s + ((n * CB + c / block) * HW) * block + c % block;
      float* o = d + nc * HW;
      for (int64_t i = 0; i < HW; ++i) o[i] = in[i * block];
    }
  });
  return out;
}

void Tensor::copy_(const Tensor& src) {
  CNNCORE_CHECK_VALUE(src.shape_ == shape_, "copy_: source shape ", shape_str(src.shape_),
                      " does not match destination shape ", shape_str(shape_));
  CNNCORE_CHECK_TYPE(src.dtype_ == dtype_, "copy_: source dtype ", dtype_name(src.dtype_),
                     " does not match destination dtype ", dtype_name(dtype_));
  CNNCORE_CHECK_VALUE(!block_, "copy_: cannot copy into a blocked tensor");
  if (is_cuda() || src.is_cuda()) {
    Tensor c = src.device() == device() ? src.contiguous() : src.to(device());
    if (!is_cuda()) {  // device -> host: c is a host copy now
      copy_(c);
      return;
    }
    if (is_contiguous())
      cuda::copy_device_to_device(device_data(), c.device_data(),
                                  static_cast<size_t>(numel()) * dtype_size(dtype_),
                                  device().index);
    else
      cuda::scatter_strided(c, *this);
    return;
  }
  Tensor c = src.contiguous();
  if (is_contiguous()) {
    std::memcpy(raw_data(), c.raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_));
    return;
  }
  // Scatter into a strided destination: iterate destination indices.
  const int64_t n = numel(), nd = dim();
  const char* s = static_cast<const char*>(c.raw_data());
  char* d = static_cast<char*>(raw_data());
  const size_t es = dtype_size(dtype_);
  std::vector<int64_t> idx(nd, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int64_t k = nd - 1; k >= 0; --k) {
      off += (rem % shape_[k]) * strides_[k];
      rem /= shape_[k];
    }
    std::memcpy(d + off * static_cast<int64_t>(es), s + i * static_cast<int64_t>(es), es);
  }
}

void Tensor::fill_(float value) {
  CNNCORE_CHECK_VALUE(is_contiguous(), "fill_: the tensor must be contiguous");
  if (is_cuda()) {
    CNNCORE_CHECK_TYPE(dtype_ == DType::Float32, "fill_: expected a float32 tensor, but got ",
                       dtype_name(dtype_));
    cuda::fill(*this, value);
    return;
  }
  float* p = data<float>();
  const int64_t n = numel();
  parallel_for(0, n, 65536, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
}

void Tensor::zero_() {
  check_defined(*this, "zero_", "the tensor");
  const size_t item = dtype_size(dtype_);
  if (is_cuda() && is_contiguous()) {
    cuda::zero_bytes(device_data(), static_cast<size_t>(numel()) * item, device().index);
    return;
  }
  if (block_) {
    // A blocked tensor's footprint includes the padded channels, which must read as zero too.
    const int64_t blocks = (shape_[1] + block_ - 1) / block_;
    const size_t n = static_cast<size_t>(shape_[0] * blocks * shape_[2] * shape_[3] * block_);
    std::memset(raw_data(), 0, n * item);
  } else if (is_contiguous()) {
    std::memset(raw_data(), 0, static_cast<size_t>(numel()) * item);
  } else {
    // A strided view (narrow, transpose, ...): only its own elements, never the whole storage.
    copy_(Tensor::zeros(shape_, dtype_));
  }
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  CNNCORE_CHECK_VALUE(t.defined(), op, ": ", arg, " is undefined");
}

void check_dim(const Tensor& t, int64_t dim, const char* op, const char* arg) {
  check_defined(t, op, arg);
  CNNCORE_CHECK_VALUE(t.dim() == dim, op, ": ", arg, " must be ", dim, "-D, but got ", t.dim(),
                      "-D with shape ", shape_str(t.shape()));
}

void check_dtype(const Tensor& t, DType dtype, const char* op, const char* arg) {
  check_defined(t, op, arg);
  // Every CPU op checks its inputs' dtype at entry: the one place that can name the op when a
  // tensor on a GPU reaches a kernel that has no CUDA twin (the CUDA ones dispatch before this).
  if (t.is_cuda())
    throw Error(detail::concat(op, ": ", arg, " is on ", t.device().str(),
                               ", but this op has no CUDA kernel yet; move it with .cpu()"));
  CNNCORE_CHECK_TYPE(t.dtype() == dtype, op, ": ", arg, " must be ", dtype_name(dtype),
                     ", but got ", dtype_name(t.dtype()));
}

void check_nonempty(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  CNNCORE_CHECK_VALUE(t.numel() > 0, op, ": ", arg, " must not be empty, but got shape ",
                      shape_str(t.shape()));
}

void check_same_device(const char* op,
                       std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  const std::pair<const char*, const Tensor*>* first = nullptr;
  for (const auto& p : tensors) {
    if (!p.second || !p.second->defined()) continue;
    if (!first) {
      first = &p;
    } else if (p.second->device() != first->second->device()) {
      throw Error(detail::concat(op, ": expected all tensors on the same device, but ",
                                 first->first, " is on ", first->second->device().str(), " and ",
                                 p.first, " is on ", p.second->device().str()));
    }
  }
}

Tensor as_nchw(const Tensor& t) {
  check_defined(t, "as_nchw", "tensor");
  return t.contiguous();
}

}  // namespace cnncore
