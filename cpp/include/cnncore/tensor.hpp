// cnncore::Tensor: a shape, strides and a shared buffer of float32 (or int64 for indices and labels).
//
// Memory format. Every tensor has a *logical* shape, always NCHW for images, and one of two
// physical arrangements:
//   - strided (block() == 0): element [i0, i1, ...] lives at data + sum(ik * strides[k]). NCHW
//     contiguous and NHWC ("channels last") are both strided; views (permute, narrow, expand) too.
//   - blocked NCHWc (block() == c, c = 8 or 16, the SIMD width): a 4-D tensor stored as
//     [N][ceil(C/c)][H][W][c], channels padded with zeros to a multiple of c. Kernels that prefer it
//     return it, so a network can stay blocked from layer to layer; to_strided() converts back, and
//     the API edges (numpy(), the C++ accessors) always hand out NCHW.
// Ops accept every format: a kernel that wants another one converts at its entry (as_nchw()).
//
// Errors: every check throws a cnncore::Error subclass whose message names the op, the argument,
// what was expected and what was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef CNNCORE_API
#if defined(_WIN32)
#define CNNCORE_API __declspec(dllexport)
#else
#define CNNCORE_API __attribute__((visibility("default")))
#endif
#endif

namespace cnncore {

// ---- errors ------------------------------------------------------------------------------------
class CNNCORE_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A value is out of range or shapes disagree (Python: ValueError).
class CNNCORE_API ValueError : public Error {
 public:
  using Error::Error;
};
// An argument has the wrong type or dtype (Python: TypeError).
class CNNCORE_API TypeError : public Error {
 public:
  using Error::Error;
};
// An index is out of range (Python: IndexError).
class CNNCORE_API IndexError : public Error {
 public:
  using Error::Error;
};

// An allocation the machine cannot satisfy (Python: MemoryError). Sizes that overflow int64 are
// a ValueError instead: they are wrong, not merely too big.
class CNNCORE_API MemoryError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

// Formats a shape as "(2, 3, 4)", the way Python prints a tuple.
CNNCORE_API std::string shape_str(const std::vector<int64_t>& shape);

#define CNNCORE_CHECK_VALUE(cond, ...) \
  do {                                 \
    if (!(cond)) throw ::cnncore::ValueError(::cnncore::detail::concat(__VA_ARGS__)); \
  } while (0)
#define CNNCORE_CHECK_TYPE(cond, ...) \
  do {                                \
    if (!(cond)) throw ::cnncore::TypeError(::cnncore::detail::concat(__VA_ARGS__)); \
  } while (0)

// ---- devices -----------------------------------------------------------------------------------
// Where a tensor's memory lives: host memory, or the memory of CUDA device `index`. str() and
// parse() use torch's spelling: "cpu", "cuda:0" ("cuda" alone means cuda:0).
enum class DeviceType : uint8_t { CPU = 0, CUDA = 1 };
struct CNNCORE_API Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
  // ValueError for anything but "cpu", "cuda" or "cuda:<non-negative int>".
  static Device parse(const std::string& name, const char* op = "device");
};

// ---- tensor ------------------------------------------------------------------------------------
enum class DType : uint8_t { Float32 = 0, Int64 = 1 };
CNNCORE_API const char* dtype_name(DType d);
CNNCORE_API size_t dtype_size(DType d);

using Shape = std::vector<int64_t>;

// numel of a shape, with an error (not a wrapped number) when the product overflows int64.
CNNCORE_API int64_t shape_numel(const Shape& shape, const char* op = "tensor");
CNNCORE_API Shape contiguous_strides(const Shape& shape);

// A block of memory: owned (64-byte aligned, freed with the last reference) or borrowed from the
// caller (the release callback runs when the last reference goes away).
struct CNNCORE_API Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;  // CUDA storage comes from the caching allocator and goes back to it
  std::function<void(void*)> release;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();
};

class CNNCORE_API Tensor {
 public:
  Tensor() = default;  // undefined: defined() == false

  // Fresh contiguous NCHW storage; empty() leaves it uninitialised.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
  // The same on a device: a CUDA device needs a build with -DCNNCORE_CUDA=ON and a GPU, else
  // a cnncore::Error saying which is missing.
  static Tensor empty(const Shape& shape, DType dtype, Device device);
  static Tensor zeros(const Shape& shape, DType dtype, Device device);
  static Tensor full(const Shape& shape, float value);
  // Wraps the caller's memory without copying. strides are in elements; empty = contiguous.
  // release (may be empty) runs when the last Tensor referring to the memory is gone.
  static Tensor from_blob(void* data, const Shape& shape, const Shape& strides, DType dtype,
                          std::function<void(void*)> release = {});

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const { return dtype_; }
  int block() const { return block_; }  // 0 = strided, else the NCHWc channel block
  bool is_contiguous() const;           // strided, row-major, no gaps
  int64_t storage_offset() const { return offset_; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  Device device() const { return storage_ ? storage_->device : Device{}; }
  bool is_cuda() const { return device().is_cuda(); }

  // Pointer to element [0, 0, ...] in host memory. Checks the dtype, and throws for a tensor
  // on a CUDA device: host code must never read device memory.
  template <class T>
  T* data() const;
  void* raw_data() const;
  // Pointer to element [0, 0, ...] on whatever device holds it (for the CUDA kernels).
  void* device_data() const;
  template <class T>
  T* device_data() const { return static_cast<T*>(device_data()); }

  // A copy on `device` (self when already there); contiguous NCHW.
  Tensor to(Device device) const;

  // ---- views and copies (a view shares storage) ----
  Tensor contiguous() const;  // self if already contiguous NCHW, else a strided NCHW copy
  Tensor clone() const;       // always a copy, contiguous
  Tensor view(Shape shape) const;      // contiguous only; one -1 is inferred
  Tensor reshape(Shape shape) const;   // view when possible, else a copy
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  // A view with its own shape and (non-negative) strides starting `offset` elements past this
  // tensor's first element; ValueError unless every element it reaches lies in the storage.
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;
  Tensor expand(const Shape& shape) const;  // broadcast view (stride 0 on expanded dims)
  Tensor to_blocked(int block) const;       // NCHW -> NCHWc (4-D only)
  Tensor to_strided() const;                // NCHWc -> NCHW contiguous; self when strided
  void copy_(const Tensor& src);            // same shape; any layouts; converts dtype never
  void fill_(float value);
  void zero_();

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::Float32;
  int block_ = 0;
};

template <>
CNNCORE_API float* Tensor::data<float>() const;
template <>
CNNCORE_API int64_t* Tensor::data<int64_t>() const;

// Freed host blocks of >= 4 MiB are kept for reuse by the next tensor of the same rounded size
// (up to CNNCORE_HOST_CACHE_MB, default 512). empty_host_cache() frees them and returns the bytes
// released; host_cache_bytes() says how many are held.
CNNCORE_API size_t empty_host_cache();
CNNCORE_API size_t host_cache_bytes();

// Checks used by every op at its entry: rank, dtype, non-empty; convert to NCHW contiguous.
// Messages read "<op>: <arg> must be <expected>, but got <given>".
CNNCORE_API void check_dim(const Tensor& t, int64_t dim, const char* op, const char* arg);
CNNCORE_API void check_dtype(const Tensor& t, DType dtype, const char* op, const char* arg);
CNNCORE_API void check_defined(const Tensor& t, const char* op, const char* arg);
CNNCORE_API void check_nonempty(const Tensor& t, const char* op, const char* arg);
// "<op>: expected all tensors on the same device, but <a> is on cuda:0 and <b> is on cpu"
// (a cnncore::Error, Python RuntimeError). Undefined tensors are skipped.
CNNCORE_API void check_same_device(const char* op,
                                   std::initializer_list<std::pair<const char*, const Tensor*>>);
// Contiguous strided NCHW float32: a no-op for such a tensor, otherwise one copy.
CNNCORE_API Tensor as_nchw(const Tensor& t);

}  // namespace cnncore
